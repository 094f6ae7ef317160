/*
 * The task grid: one page of rows rendered by the server (filtered by status and title,
 * paged by update time), then kept current from `activity.list_updated` frames on
 * `activity/{org}` (each carries the task's row as the task API shapes it).
 *
 * A row is replaced in place by task id, so a frame the page already reflects changes
 * nothing. On the first page a row that matches the filter moves to the top; on later
 * pages rows already shown are updated where they are (the newest live on page one). A
 * row that stops matching the filter leaves. The "need your answer" count follows the
 * frames too (a task needs an answer while it is paused). "New task" posts to the
 * product API with the session and its CSRF token, and shows the API's field errors.
 */
import { postJSON, problemText } from "./api.js";
import { el, embedded, token } from "./dom.js";
import { connect, showState } from "./realtime.js";
import { keepFresh, timeElement } from "./time.js";

const config = embedded("page-config");
const labels = config.statusLabels;
const body = document.querySelector("#task-grid tbody");
const empty = document.getElementById("grid-empty");
const waiting = new Set(config.waiting || []);
const filter = config.filter || { status: "", q: "" };

function cell(label, className) {
  const td = el("td", className);
  td.setAttribute("data-label", label);
  return td;
}

function buildRow(task) {
  const tr = document.createElement("tr");
  tr.setAttribute("data-task-id", task.id);
  tr.setAttribute("data-updated", task.updated_at || "");

  const title = cell("Task", "grid__title");
  const anchor = el("a", "", task.title);
  // Ids are checked by the server (task_ + 32 hex); encode anyway, it is a path segment.
  anchor.href = config.taskUrl.replace("task_ID", encodeURIComponent(task.id));
  title.appendChild(anchor);

  const status = cell("Status");
  const state = String(task.status || "");
  status.appendChild(el("span", `status status--${token(state)}`, labels[state] || state));

  const repo = cell("Repository", "grid__repo mono");
  repo.textContent = task.repo || "";

  const updated = cell("Updated");
  updated.appendChild(timeElement(task.updated_at));

  tr.append(title, status, repo, updated);
  return tr;
}

// The filter as the server applies it: the status, and the title containing the words.
function matches(task) {
  if (filter.status && task.status !== filter.status) {
    return false;
  }
  return !filter.q || String(task.title || "").toLowerCase().includes(filter.q.toLowerCase());
}

function showWaiting() {
  const count = waiting.size;
  document.getElementById("waiting-count").textContent = String(count);
  document.getElementById("waiting-label").textContent =
    `${count === 1 ? "needs" : "need"} your answer`;
  document.getElementById("waiting").classList.toggle("waiting--some", count > 0);
}

function upsert(task) {
  if (!task || typeof task.id !== "string") {
    return;
  }
  if (task.status === "paused") {
    waiting.add(task.id);
  } else {
    waiting.delete(task.id);
  }
  showWaiting();
  const shown = body.querySelector(`tr[data-task-id="${CSS.escape(task.id)}"]`);
  if (!matches(task)) {
    shown?.remove();
    empty.hidden = body.rows.length > 0;
    return;
  }
  if (!shown && !config.firstPage) {
    return; // newer than this page: it is on the first one
  }
  const fresh = buildRow(task);
  if (shown && !config.firstPage) {
    shown.replaceWith(fresh);
  } else {
    shown?.remove();
    body.insertBefore(fresh, body.firstChild);
  }
  fresh.classList.add("flash");
  window.setTimeout(() => fresh.classList.remove("flash"), 1600);
  empty.hidden = true;
}

// --- New task ------------------------------------------------------------------------

const form = document.getElementById("new-task-form");

function fieldError(name) {
  const control = form.elements.namedItem(name);
  const node = control && document.getElementById(control.getAttribute("aria-describedby"));
  return { control, node };
}

function clearErrors() {
  for (const control of form.elements) {
    control.removeAttribute?.("aria-invalid");
  }
  for (const node of form.querySelectorAll(".field__error, .form__error")) {
    node.hidden = true;
    node.textContent = "";
  }
}

// The API's `errors` (field → messages) under their fields; others in the form's box.
function showErrors(answer) {
  const general = document.getElementById("new-task-error");
  const errors = (answer.data && answer.data.errors) || {};
  const unplaced = [];
  let first = null;
  for (const [name, messages] of Object.entries(errors)) {
    const text = [].concat(messages).map(String).join(" ");
    const { control, node } = fieldError(name === "project" ? "repo" : name);
    if (control && node) {
      control.setAttribute("aria-invalid", "true");
      node.textContent = text;
      node.hidden = false;
      first = first || control;
    } else {
      unplaced.push(`${name}: ${text}`);
    }
  }
  if (unplaced.length || !first) {
    general.textContent = [problemText(answer, "The task was not created."), ...unplaced].join(" ");
    general.hidden = false;
  }
  (first || general).focus?.();
}

if (form) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors();
    const result = document.getElementById("new-task-result");
    result.textContent = "";
    const repo = form.elements.namedItem("repo");
    const option = repo.selectedOptions[0];
    const body = {
      title: form.elements.namedItem("title").value.trim(),
      prompt: form.elements.namedItem("prompt").value.trim(),
      definition_of_done: form.elements
        .namedItem("definition_of_done")
        .value.split("\n")
        .map((line) => line.trim())
        .filter(Boolean),
      repo: repo.value,
      project: option ? option.getAttribute("data-project") : "",
    };
    // What the browser can tell at once; everything else is the API's to say.
    const missing = {};
    for (const name of ["title", "prompt"]) {
      if (!body[name]) {
        missing[name] = ["Required."];
      }
    }
    if (Object.keys(missing).length) {
      showErrors({ status: 400, data: { errors: missing } });
      return;
    }
    const scope = form.elements.namedItem("branch_scope").value.trim();
    if (scope) {
      body.branch_scope = scope;
    }
    const app = form.elements.namedItem("assigned_app_id").value;
    if (app) {
      body.assigned_app_id = app;
    }
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    let answer;
    try {
      answer = await postJSON(config.createUrl, body);
    } catch {
      answer = { ok: false, status: 0, data: { detail: "The server could not be reached." } };
    }
    button.disabled = false;
    if (answer.status === 0 && !answer.data.detail) {
      answer.data.detail = "Signed out: reload the page to sign in again.";
    }
    if (!answer.ok) {
      showErrors(answer);
      return;
    }
    const link = el("a", "", answer.data.title);
    link.href = config.taskUrl.replace("task_ID", encodeURIComponent(answer.data.id));
    result.replaceChildren("Created ", link, ".");
    form.reset();
    upsert(answer.data); // its frame follows; applying it twice changes nothing
  });
}

keepFresh(document);

connect({
  positions: config.positions,
  ticketUrl: config.ticketUrl,
  socketPath: config.socketPath,
  transport: config.transport,
  onFrame(frame) {
    if (frame.type === "activity.list_updated") {
      upsert({ ...frame.task, status: frame.status || (frame.task || {}).status });
    }
  },
  onState: showState(document.getElementById("live-state")),
});
