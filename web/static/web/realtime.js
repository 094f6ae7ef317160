/*
 * The pages' realtime client: one WebSocket to the hub, authenticated with a
 * single-use ticket bought with the session, subscribed with `since` so nothing is lost;
 * or, where WebSockets cannot pass, one server-sent-events stream per topic.
 *
 * The page embeds each topic's position (read on the server BEFORE the page state), so
 * the first subscribe replays whatever was committed while the page was being built.
 * Every frame moves its topic's position; on reconnect a fresh ticket is fetched and the
 * subscribe carries the positions again: no gap, and frames at or below a position are
 * dropped, so no duplicates either.
 *
 * Transport (docs/realtime.md, "The pages' transport"): the WebSocket first when the
 * server prefers it (`ETHER_REALTIME_PREFER_WEBSOCKET`, embedded as
 * `transport.preferWebsocket`), else SSE from the start. Two sockets in a row that never
 * got as far as `subscribed` (a proxy that refuses the upgrade, a network that drops it,
 * a browser without WebSocket) switch the page to SSE for the rest of its life. A socket
 * that was live and dropped is reconnected as a socket: that is a network blip, not a
 * network that cannot carry WebSockets. SSE resumes with `?after=` = the topic's
 * position, so the switch itself loses and repeats nothing.
 */
import { postJSON } from "./api.js";

// Sockets that failed before `subscribed`, in a row, before the page turns to SSE.
const SOCKET_FAILURES_BEFORE_SSE = 2;

// The socket's URL: the configured path on this page's host, ws: or wss: as the page.
function socketUrl(path, ticket) {
  const url = new URL(path, window.location.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  url.searchParams.set("token", ticket);
  return url.href;
}

// 0.5 s, 1 s, 2 s … up to 15 s, with jitter so many tabs do not come back at once.
function backoff(attempt) {
  return Math.min(15000, 500 * 2 ** attempt) * (0.75 + Math.random() / 2);
}

/*
 * An event-stream body read with fetch (rather than EventSource, which hides the status
 * of a refused request and needs a listener per event name): calls onMessage with each
 * event's parsed `data`, and returns when the stream ends.
 */
async function readEventStream(body, onMessage) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) {
      return;
    }
    buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, "\n");
    let end = buffer.indexOf("\n\n");
    while (end !== -1) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = block
        .split("\n")
        .filter((line) => line.startsWith("data:"))
        .map((line) => line.slice(line.startsWith("data: ") ? 6 : 5))
        .join("\n");
      if (data) {
        let message = null;
        try {
          message = JSON.parse(data);
        } catch {
          // not a frame: ignore it, as a socket frame that is not JSON
        }
        if (message) {
          onMessage(message);
        }
      }
      end = buffer.indexOf("\n\n");
    }
  }
}

/*
 * options: positions {topic: seq}, ticketUrl, socketPath, transport {preferWebsocket,
 * sse: {topic: url}}, onFrame(frame), onState(state, text, detail), onLost(topic) —
 * called when the hub could not replay what was missed (`recovered: false`); the default
 * reloads the page, which reads the state again.
 */
export function connect({
  positions: embedded,
  ticketUrl,
  socketPath,
  transport = {},
  onFrame,
  onState = () => {},
  onLost = () => window.location.reload(),
}) {
  const positions = { ...embedded };
  const sseUrls = transport.sse || {};
  const sseReady = Object.keys(positions).every((topic) => Object.hasOwn(sseUrls, topic));
  let useSse = sseReady && (transport.preferWebsocket === false || !("WebSocket" in window));
  let attempt = 0;
  let socketFailures = 0;
  let stopped = false;

  function signedOut() {
    stopped = true;
    onState("signed-out", "Signed out: reload the page to sign in again");
  }

  function scheduleRetry() {
    if (stopped) {
      return;
    }
    const delay = backoff(attempt);
    attempt += 1;
    onState("offline", "Reconnecting…");
    window.setTimeout(open, delay);
  }

  // A socket that ended before the hub said `subscribed`: count it, maybe turn to SSE.
  function socketFailed() {
    socketFailures += 1;
    if (sseReady && socketFailures >= SOCKET_FAILURES_BEFORE_SSE) {
      useSse = true;
      attempt = 0;
      openSse();
      return;
    }
    scheduleRetry();
  }

  function handle(message) {
    if (message.type === "subscribed") {
      attempt = 0;
      socketFailures = 0;
      onState("live", "Live", "over a WebSocket");
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
    if (useSse) {
      openSse();
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
      signedOut();
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
      socketFailed();
      return;
    }
    let subscribed = false;
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
      if (message.type === "subscribed") {
        subscribed = true;
      }
      handle(message);
    });
    socket.addEventListener("close", () => (subscribed ? scheduleRetry() : socketFailed()));
  }

  // --- SSE: one stream per topic, each resuming after its topic's position -------------

  const streaming = new Set();

  function streamState() {
    if (streaming.size === Object.keys(positions).length) {
      attempt = 0;
      onState("live", "Live", "over server-sent events");
    }
  }

  async function stream(topic) {
    const url = new URL(sseUrls[topic], window.location.href);
    url.searchParams.set("after", String(positions[topic]));
    let response;
    try {
      response = await fetch(url.href, {
        credentials: "same-origin",
        redirect: "manual",
        headers: { Accept: "text/event-stream" },
      });
    } catch {
      return "retry";
    }
    // A lapsed session answers 401/403, or a redirect to the sign-in page (status 0).
    if (response.status === 401 || response.status === 403 || response.status === 0) {
      return "signed-out";
    }
    if (!response.ok || !response.body) {
      return "retry";
    }
    streaming.add(topic);
    streamState();
    try {
      await readEventStream(response.body, handle);
    } catch {
      // the connection broke mid-stream: resume after the position reached
    } finally {
      streaming.delete(topic);
    }
    return "retry";
  }

  async function follow(topic) {
    while (!stopped) {
      const outcome = await stream(topic);
      if (outcome === "signed-out") {
        signedOut();
        return;
      }
      if (stopped) {
        return;
      }
      onState("offline", "Reconnecting…");
      const delay = backoff(attempt);
      attempt += 1;
      await new Promise((resolve) => window.setTimeout(resolve, delay));
    }
  }

  function openSse() {
    onState("connecting", "Connecting…");
    for (const topic of Object.keys(positions)) {
      follow(topic);
    }
  }

  open();
}

// The "Connecting… / Live / Reconnecting…" badge every live page shows; its title says
// which transport carries the page (a WebSocket, or server-sent events).
export function showState(element) {
  return (state, text, detail) => {
    if (!element) {
      return;
    }
    element.setAttribute("data-state", state);
    element.textContent = text;
    if (detail) {
      element.setAttribute("title", `${text} ${detail}`);
    } else {
      element.removeAttribute("title");
    }
  };
}
