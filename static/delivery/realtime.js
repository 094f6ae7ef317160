/*
 * The pages' realtime client: one WebSocket to /api/realtime, authenticated with a
 * single-use ticket bought with the session, subscribed with `since` so nothing is lost.
 *
 * The page embeds each topic's position (read on the server BEFORE the page state), so
 * the first subscribe replays whatever was committed while the page was being built.
 * Every frame moves its topic's position; on reconnect a fresh ticket is fetched and the
 * subscribe carries the positions again: no gap, and frames at or below a position are
 * dropped, so no duplicates either.
 */
(function () {
  "use strict";

  function csrfToken() {
    var meta = document.querySelector("meta[name=csrf-token]");
    if (meta && meta.content) {
      return meta.content;
    }
    var match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  // JSON POST to the product API with the session (DRF checks CSRF for session callers).
  function postJSON(url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      redirect: "manual",
      headers: {
        "Content-Type": "application/json",
        Accept: "application/json",
        "X-CSRFToken": csrfToken(),
      },
      body: JSON.stringify(body || {}),
    }).then(function (response) {
      return response
        .json()
        .catch(function () {
          return {};
        })
        .then(function (data) {
          return { ok: response.ok, status: response.status, data: data };
        });
    });
  }

  /*
   * options: positions {topic: seq}, ticketUrl, onFrame(frame), onState(state, detail),
   * onLost(topic) — called when the hub could not replay what was missed
   * (`recovered: false`); the default reloads the page, which reads the state again.
   */
  function connect(options) {
    var positions = {};
    Object.keys(options.positions).forEach(function (topic) {
      positions[topic] = options.positions[topic];
    });
    var socket = null;
    var attempt = 0;
    var stopped = false;
    var onState = options.onState || function () {};
    var onLost =
      options.onLost ||
      function () {
        window.location.reload();
      };

    function scheduleRetry() {
      if (stopped) {
        return;
      }
      // 0.5 s, 1 s, 2 s … up to 15 s, with jitter so many tabs do not come back at once.
      var delay = Math.min(15000, 500 * Math.pow(2, attempt)) * (0.75 + Math.random() / 2);
      attempt += 1;
      onState("offline", "Reconnecting…");
      window.setTimeout(open, delay);
    }

    function handle(message) {
      if (message.type === "subscribed") {
        attempt = 0;
        onState("live", "Live");
        var recovered = message.recovered || {};
        Object.keys(recovered).forEach(function (topic) {
          if (recovered[topic] === false) {
            onLost(topic);
          }
        });
        return;
      }
      if (message.type === "error") {
        onState("error", message.detail || message.code);
        return;
      }
      if (typeof message.seq !== "number" || !(message.topic in positions)) {
        return; // pong, unsubscribed, or a topic this page did not ask for
      }
      if (message.seq <= positions[message.topic]) {
        return; // already shown: part of the page, or seen before a reconnect
      }
      positions[message.topic] = message.seq;
      options.onFrame(message);
    }

    function open() {
      if (stopped) {
        return;
      }
      onState("connecting", "Connecting…");
      postJSON(options.ticketUrl, {})
        .then(function (answer) {
          if (answer.status === 401 || answer.status === 403 || answer.status === 0) {
            stopped = true;
            onState("signed-out", "Signed out: reload the page to sign in again");
            return;
          }
          if (!answer.ok || !answer.data.ticket) {
            throw new Error("ticket refused (" + answer.status + ")");
          }
          var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
          var url =
            scheme +
            window.location.host +
            "/api/realtime?token=" +
            encodeURIComponent(answer.data.ticket);
          socket = new WebSocket(url);
          socket.onopen = function () {
            socket.send(
              JSON.stringify({
                action: "subscribe",
                topics: Object.keys(positions),
                since: positions,
              })
            );
          };
          socket.onmessage = function (event) {
            var message;
            try {
              message = JSON.parse(event.data);
            } catch (error) {
              return;
            }
            handle(message);
          };
          socket.onclose = function () {
            socket = null;
            scheduleRetry();
          };
        })
        .catch(scheduleRetry);
    }

    open();
    return {
      positions: function () {
        return Object.assign({}, positions);
      },
      // For tests and the debug console: drop the socket as a network failure would.
      drop: function () {
        if (socket) {
          socket.close();
        }
      },
      stop: function () {
        stopped = true;
        if (socket) {
          socket.close();
        }
      },
    };
  }

  // One place for the "Live / Reconnecting…" badge every page shows.
  function showState(element) {
    return function (state, text) {
      if (!element) {
        return;
      }
      element.setAttribute("data-state", state);
      element.textContent = text;
    };
  }

  window.EtherRealtime = {
    connect: connect,
    postJSON: postJSON,
    showState: showState,
  };
})();
