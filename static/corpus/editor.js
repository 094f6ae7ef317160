/*
 * The markdown editor of the admin: CodeMirror 6 (static/corpus/vendor/codemirror.js,
 * built by frontend/build.mjs) over the form's textarea, beside a preview rendered by
 * the server.
 *
 * - The textarea stays in the form (hidden) and holds the text on every change, so the
 *   form posts as it always did, and without JavaScript it is the editor.
 * - Tab indents; Escape then Tab leaves the editor (CodeMirror's tab-focus escape), as
 *   accessible code editors do; Ctrl/Cmd+S saves and keeps editing.
 * - The browser never renders markdown. Each pause in typing (250 ms) posts the text to
 *   the staff-only preview endpoint, which runs corpus.rendering.render_markdown (the one
 *   sanitizing renderer) and says what its sanitizer removed; the notice shows that.
 * - The preview scrolls with the editor.
 */
import {
  EditorState,
  EditorView,
  defaultHighlightStyle,
  defaultKeymap,
  drawSelection,
  highlightActiveLine,
  highlightActiveLineGutter,
  history,
  historyKeymap,
  indentWithTab,
  keymap,
  lineNumbers,
  markdown,
  markdownLanguage,
  syntaxHighlighting,
} from "./vendor/codemirror.js";

const DELAY_MS = 250;

function csrfToken(form) {
  const input = form && form.querySelector("input[name=csrfmiddlewaretoken]");
  if (input) {
    return input.value;
  }
  const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : "";
}

function setUp(editor) {
  const textarea = editor.querySelector("textarea");
  const pane = editor.querySelector(".md-editor__preview");
  const status = editor.querySelector(".md-editor__status");
  const notice = editor.querySelector(".md-editor__notice");
  const form = editor.closest("form");
  const url = editor.getAttribute("data-preview-url");
  const label = textarea.id ? document.querySelector(`label[for="${textarea.id}"]`) : null;
  let timer = null;
  let inFlight = null;
  let sent = 0;
  const initial = textarea.value;
  // A form sent back with an error holds text that is not saved anywhere yet.
  const unsaved = document.querySelector(".errornote, .errorlist") !== null;
  let submitting = false;

  function say(text, isError) {
    status.textContent = text;
    status.classList.toggle("md-editor__status--error", Boolean(isError));
  }

  function showRemoved(text) {
    notice.textContent = text || "";
    notice.hidden = !text;
  }

  function refresh() {
    const mine = ++sent;
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
      .then((response) => {
        if (response.type === "opaqueredirect" || response.status === 403) {
          throw new Error("your session has ended; sign in again in another tab");
        }
        if (!response.ok) {
          throw new Error("the server answered " + response.status);
        }
        return response.json();
      })
      .then((data) => {
        if (mine !== sent) {
          return;
        }
        // Sanitized on the server by corpus.rendering; scripts inserted this way never run.
        pane.innerHTML = data.html;
        showRemoved(data.notice);
        say("Preview · rendered and sanitized by the server");
        syncScroll();
      })
      .catch((error) => {
        if (error.name !== "AbortError" && mine === sent) {
          say("Preview unavailable: " + error.message, true);
        }
      });
  }

  function schedule() {
    window.clearTimeout(timer);
    timer = window.setTimeout(refresh, DELAY_MS);
  }

  function save() {
    const button = form && (form.querySelector("[name=_continue]") || form.querySelector("[type=submit]"));
    if (button) {
      button.click();
    }
    return true;
  }

  const host = document.createElement("div");
  host.className = "md-editor__code";
  textarea.after(host);
  textarea.hidden = true;

  const view = new EditorView({
    parent: host,
    state: EditorState.create({
      doc: textarea.value,
      extensions: [
        lineNumbers(),
        highlightActiveLineGutter(),
        history(),
        drawSelection(),
        highlightActiveLine(),
        markdown({ base: markdownLanguage }),
        syntaxHighlighting(defaultHighlightStyle),
        EditorView.lineWrapping,
        keymap.of([{ key: "Mod-s", run: save, preventDefault: true }, indentWithTab, ...defaultKeymap, ...historyKeymap]),
        EditorView.contentAttributes.of({
          "aria-label": label ? label.textContent.trim() + " (markdown)" : "Markdown",
          "aria-describedby": editor.querySelector(".md-editor__help").id,
        }),
        EditorView.updateListener.of((update) => {
          if (update.docChanged) {
            textarea.value = update.state.doc.toString();
            schedule();
          }
        }),
      ],
    }),
  });

  if (label) {
    label.addEventListener("click", () => view.focus());
  }

  // The preview follows the editor: the same fraction of each is scrolled past.
  let syncing = false;
  function syncScroll() {
    const source = view.scrollDOM;
    const range = source.scrollHeight - source.clientHeight;
    const fraction = range > 0 ? source.scrollTop / range : 0;
    syncing = true;
    pane.scrollTop = fraction * (pane.scrollHeight - pane.clientHeight);
    window.requestAnimationFrame(() => {
      syncing = false;
    });
  }
  view.scrollDOM.addEventListener("scroll", () => {
    if (!syncing) {
      syncScroll();
    }
  });

  if (form) {
    form.addEventListener("submit", () => {
      submitting = true;
    });
  }
  window.addEventListener("beforeunload", (event) => {
    if (!submitting && (unsaved || textarea.value !== initial)) {
      event.preventDefault();
      event.returnValue = "";
    }
  });

  refresh();
}

document.querySelectorAll(".md-editor").forEach(setUp);
