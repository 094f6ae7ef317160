/*
 * The task grid: rows rendered by the server, then kept current from
 * `activity.list_updated` frames on `activity/{org}` (each carries the task's row as
 * the task API shapes it). A row is replaced in place by task id, so a frame that the
 * page already reflects changes nothing; the most recently updated task moves to the top.
 */
import { el, embedded, token } from "./dom.js";
import { connect, showState } from "./realtime.js";

const config = embedded("page-config");
const labels = config.statusLabels;
const body = document.querySelector("#task-grid tbody");
const empty = document.getElementById("grid-empty");

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

  // As the server renders it (web.views.short_time): 2026-11-25 22:29 UTC.
  const updated = cell("Updated");
  const stamp = String(task.updated_at || "");
  const time = el("time", "", stamp ? `${stamp.slice(0, 16).replace("T", " ")} UTC` : "");
  time.setAttribute("datetime", stamp);
  updated.appendChild(time);

  tr.append(title, status, repo, updated);
  return tr;
}

function upsert(task) {
  if (!task || typeof task.id !== "string") {
    return;
  }
  const fresh = buildRow(task);
  body.querySelector(`tr[data-task-id="${CSS.escape(task.id)}"]`)?.remove();
  body.insertBefore(fresh, body.firstChild);
  fresh.classList.add("flash");
  window.setTimeout(() => fresh.classList.remove("flash"), 1600);
  empty.hidden = true;
}

connect({
  positions: config.positions,
  ticketUrl: config.ticketUrl,
  socketPath: config.socketPath,
  onFrame(frame) {
    if (frame.type === "activity.list_updated") {
      upsert({ ...frame.task, status: frame.status || (frame.task || {}).status });
    }
  },
  onState: showState(document.getElementById("live-state")),
});
