/*
 * The task grid: rows rendered by the server, then kept current from
 * `activity.list_updated` frames on `activity/{org}` (each carries the task's row as
 * the task API shapes it). A row is replaced in place by task id, so a frame that the
 * page already reflects changes nothing; the most recently updated task moves to the top.
 */
(function () {
  "use strict";

  var config = JSON.parse(document.getElementById("page-config").textContent);
  var labels = config.statusLabels;
  var body = document.querySelector("#task-grid tbody");
  var empty = document.getElementById("grid-empty");
  var el = function (tag, className, text) {
    var node = document.createElement(tag);
    if (className) {
      node.className = className;
    }
    if (text !== undefined) {
      node.textContent = String(text);
    }
    return node;
  };

  function cell(label, className) {
    var td = el("td", className);
    td.setAttribute("data-label", label);
    return td;
  }

  function buildRow(task) {
    var tr = document.createElement("tr");
    tr.setAttribute("data-task-id", task.id);
    tr.setAttribute("data-updated", task.updated_at || "");

    var title = cell("Task", "grid__title");
    var anchor = el("a", "", task.title);
    // Ids are checked by the server (task_ + 32 hex); encode anyway, it is a path segment.
    anchor.href = config.taskUrl.replace("task_ID", encodeURIComponent(task.id));
    title.appendChild(anchor);

    var status = cell("Status");
    var state = String(task.status || "");
    status.appendChild(el("span", "status status--" + state.replace(/[^a-z_]/g, ""), labels[state] || state));

    var repo = cell("Repository", "grid__repo mono");
    repo.textContent = task.repo || "";

    var updated = cell("Updated");
    var stamp = String(task.updated_at || "");
    var time = el("time", "", stamp ? stamp.slice(0, 16).replace("T", " ") + " UTC" : "");
    time.setAttribute("datetime", stamp);
    updated.appendChild(time);

    [title, status, repo, updated].forEach(function (td) {
      tr.appendChild(td);
    });
    return tr;
  }

  function upsert(task) {
    if (!task || typeof task.id !== "string") {
      return;
    }
    var fresh = buildRow(task);
    var old = body.querySelector('tr[data-task-id="' + CSS.escape(task.id) + '"]');
    if (old) {
      old.remove();
    }
    body.insertBefore(fresh, body.firstChild);
    fresh.classList.add("flash");
    window.setTimeout(function () {
      fresh.classList.remove("flash");
    }, 1600);
    empty.hidden = true;
  }

  window.__etherRealtime = window.EtherRealtime.connect({
    positions: config.positions,
    ticketUrl: config.ticketUrl,
    onFrame: function (frame) {
      if (frame.type === "activity.list_updated") {
        upsert(Object.assign({}, frame.task, { status: frame.status || (frame.task || {}).status }));
      }
    },
    onState: window.EtherRealtime.showState(document.getElementById("live-state")),
  });
})();
