/*
 * Markdown editor of the admin: a live preview rendered by the server.
 *
 * The browser never renders markdown. Each pause in typing (250 ms) posts the text to
 * the staff-only preview endpoint, which runs corpus.rendering.render_markdown (the one
 * sanitizing renderer), and the returned HTML is put in the preview pane as it is.
 */
(function () {
  "use strict";

  var DELAY_MS = 250;

  function csrfToken(form) {
    var input = form && form.querySelector("input[name=csrfmiddlewaretoken]");
    if (input) {
      return input.value;
    }
    var match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  function setUp(editor) {
    var textarea = editor.querySelector("textarea");
    var pane = editor.querySelector(".md-editor__preview");
    var status = editor.querySelector(".md-editor__status");
    var form = editor.closest("form");
    var url = editor.getAttribute("data-preview-url");
    var timer = null;
    var inFlight = null;
    var sent = 0;
    var initial = textarea.value;
    // A form sent back with an error holds text that is not saved anywhere yet.
    var unsaved = document.querySelector(".errornote") !== null;
    var submitting = false;

    function say(text, isError) {
      status.textContent = text;
      status.classList.toggle("md-editor__status--error", Boolean(isError));
    }

    function refresh() {
      var mine = ++sent;
      if (inFlight) {
        inFlight.abort();
      }
      inFlight = new AbortController();
      say("Updating preview…");
      fetch(url, {
        method: "POST",
        body: new URLSearchParams({ text: textarea.value }),
        headers: { "X-CSRFToken": csrfToken(form), Accept: "application/json" },
        credentials: "same-origin",
        redirect: "manual",
        signal: inFlight.signal,
      })
        .then(function (response) {
          if (response.type === "opaqueredirect" || response.status === 403) {
            throw new Error("your session has ended; sign in again in another tab");
          }
          if (!response.ok) {
            throw new Error("the server answered " + response.status);
          }
          return response.json();
        })
        .then(function (data) {
          if (mine !== sent) {
            return;
          }
          // Sanitized on the server by corpus.rendering; scripts inserted this way never run.
          pane.innerHTML = data.html;
          say("Preview · rendered and sanitized by the server");
        })
        .catch(function (error) {
          if (error.name !== "AbortError" && mine === sent) {
            say("Preview unavailable: " + error.message, true);
          }
        });
    }

    function schedule() {
      window.clearTimeout(timer);
      timer = window.setTimeout(refresh, DELAY_MS);
    }

    textarea.addEventListener("input", schedule);

    // Ctrl/Cmd+S saves and keeps editing.
    textarea.addEventListener("keydown", function (event) {
      if ((event.ctrlKey || event.metaKey) && event.key === "s" && form) {
        var button = form.querySelector("[name=_continue]") || form.querySelector("[type=submit]");
        if (button) {
          event.preventDefault();
          button.click();
        }
      }
    });

    if (form) {
      form.addEventListener("submit", function () {
        submitting = true;
      });
    }
    window.addEventListener("beforeunload", function (event) {
      if (!submitting && (unsaved || textarea.value !== initial)) {
        event.preventDefault();
        event.returnValue = "";
      }
    });

    refresh();
  }

  function start() {
    Array.prototype.forEach.call(document.querySelectorAll(".md-editor"), setUp);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
