/*
 * The pages' realtime client: one WebSocket to the hub, authenticated with a
 * single-use ticket bought with the session, subscribed with `since` so nothing is lost.
 *
 * The page embeds each topic's position (read on the server BEFORE the page state), so
 * the first subscribe replays whatever was committed while the page was being built.
 * Every frame moves its topic's position; on reconnect a fresh ticket is fetched and the
 * subscribe carries the positions again: no gap, and frames at or below a position are
 * dropped, so no duplicates either.
 */
import { postJSON } from "./api.js";

// The socket's URL: the configured path on this page's host, ws: or wss: as the page.
function socketUrl(path, ticket) {
  const url = new URL(path, window.location.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  url.searchParams.set("token", ticket);
  return url.href;
}

/*
 * options: positions {topic: seq}, ticketUrl, socketPath, onFrame(frame),
 * onState(state, text), onLost(topic) — called when the hub could not replay what was
 * missed (`recovered: false`); the default reloads the page, which reads the state again.
 */
export function connect({
  positions: embedded,
  ticketUrl,
  socketPath,
  onFrame,
  onState = () => {},
  onLost = () => window.location.reload(),
}) {
  const positions = { ...embedded };
  let attempt = 0;
  let stopped = false;

  function scheduleRetry() {
    if (stopped) {
      return;
    }
    // 0.5 s, 1 s, 2 s … up to 15 s, with jitter so many tabs do not come back at once.
    const delay = Math.min(15000, 500 * 2 ** attempt) * (0.75 + Math.random() / 2);
    attempt += 1;
    onState("offline", "Reconnecting…");
    window.setTimeout(open, delay);
  }

  function handle(message) {
    if (message.type === "subscribed") {
      attempt = 0;
      onState("live", "Live");
      const recovered = message.recovered || {};
      for (const topic of Object.keys(recovered)) {
        if (recovered[topic] === false) {
          onLost(topic);
        }
      }
      return;
    }
    if (message.type === "error") {
      onState("error", message.detail || message.code);
      return;
    }
    if (typeof message.seq !== "number" || !Object.hasOwn(positions, message.topic)) {
      return; // pong, unsubscribed, or a topic this page did not ask for
    }
    if (message.seq <= positions[message.topic]) {
      return; // already shown: part of the page, or seen before a reconnect
    }
    positions[message.topic] = message.seq;
    onFrame(message);
  }

  async function open() {
    if (stopped) {
      return;
    }
    onState("connecting", "Connecting…");
    let answer;
    try {
      answer = await postJSON(ticketUrl, {});
    } catch {
      scheduleRetry(); // the server is unreachable: try again later
      return;
    }
    if (answer.status === 401 || answer.status === 403 || answer.status === 0) {
      stopped = true;
      onState("signed-out", "Signed out: reload the page to sign in again");
      return;
    }
    if (!answer.ok || !answer.data.ticket) {
      scheduleRetry();
      return;
    }
    let socket;
    try {
      socket = new WebSocket(socketUrl(socketPath, answer.data.ticket));
    } catch {
      scheduleRetry();
      return;
    }
    socket.addEventListener("open", () => {
      socket.send(
        JSON.stringify({ action: "subscribe", topics: Object.keys(positions), since: positions })
      );
    });
    socket.addEventListener("message", (event) => {
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      handle(message);
    });
    socket.addEventListener("close", scheduleRetry);
  }

  open();
}

// The "Connecting… / Live / Reconnecting…" badge every live page shows.
export function showState(element) {
  return (state, text) => {
    if (!element) {
      return;
    }
    element.setAttribute("data-state", state);
    element.textContent = text;
  };
}
