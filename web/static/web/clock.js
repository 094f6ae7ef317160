/*
 * Durations for people: "04:05", "1:02:03", and "+04:05" for a moment counted from a start.
 * Times are measured against the server's clock (its "now" is embedded in the page), so
 * a viewer whose computer clock is off still sees the true elapsed time and lease left.
 */

function pad(n) {
  return String(n).padStart(2, "0");
}

// 245000 → "04:05"; 3723000 → "1:02:03". Negative durations read as zero.
export function duration(ms) {
  const total = Math.max(0, Math.floor((Number(ms) || 0) / 1000));
  const hours = Math.floor(total / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const seconds = total % 60;
  return hours ? `${hours}:${pad(minutes)}:${pad(seconds)}` : `${pad(minutes)}:${pad(seconds)}`;
}

// A moment as its distance from the start: "+04:05".
export function since(start, stamp) {
  const ms = Date.parse(stamp) - Date.parse(start);
  return Number.isFinite(ms) ? `+${duration(ms)}` : "";
}

// A clock that reads the server's time: its now() is the browser's corrected by the gap
// seen when the page was rendered.
export function serverClock(serverNow) {
  const parsed = Date.parse(serverNow);
  const skew = Number.isFinite(parsed) ? parsed - Date.now() : 0;
  return { now: () => Date.now() + skew };
}
