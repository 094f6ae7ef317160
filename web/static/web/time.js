/*
 * Times as people read them: "3 min ago", with the exact UTC time as the title. The
 * server words them the same way (web.views.relative_time and short_time), and the page
 * keeps them current with `keepFresh`.
 */

// 2026-11-25T22:29:51.123Z → 2026-11-25 22:29:51 UTC
export function absolute(stamp) {
  const text = String(stamp || "");
  return text ? `${text.slice(0, 19).replace("T", " ")} UTC` : "";
}

export function relative(stamp, now = Date.now()) {
  const at = Date.parse(String(stamp || ""));
  if (Number.isNaN(at)) {
    return "";
  }
  const seconds = (now - at) / 1000;
  if (seconds < 45) {
    return "just now";
  }
  if (seconds < 45 * 60) {
    return `${Math.max(1, Math.round(seconds / 60))} min ago`;
  }
  if (seconds < 22 * 3600) {
    return `${Math.round(seconds / 3600)} h ago`;
  }
  if (seconds < 30 * 86400) {
    return `${Math.max(1, Math.round(seconds / 86400))} d ago`;
  }
  return String(stamp).slice(0, 10);
}

// A <time> element for a stamp: relative text, the absolute time as its title.
export function timeElement(stamp) {
  const node = document.createElement("time");
  node.setAttribute("datetime", String(stamp || ""));
  node.title = absolute(stamp);
  node.textContent = relative(stamp);
  return node;
}

// Rewords every <time datetime> under root each half minute.
export function keepFresh(root, every = 30000) {
  const refresh = () => {
    for (const node of root.querySelectorAll("time[datetime]")) {
      node.textContent = relative(node.getAttribute("datetime"));
    }
  };
  return window.setInterval(refresh, every);
}
