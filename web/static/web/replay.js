/*
 * The replay page: a task's persisted events played back in seq order, and the delivery
 * as it stood at the point played to.
 *
 * The scrubber is the one position: the stage shows every event up to it, and the
 * delivery panel the newest delivery among those events (at event 5 of 14, the delivery
 * of event 5, or none yet). Picking a version jumps the scrubber to that delivery, so the
 * two sides always agree. Marks on the scrubber show questions and deliveries, an axis
 * under it the time at a few points, and every time reads "+mm:ss" from the first event.
 *
 * Playback waits between two events as long as they were apart when they happened,
 * divided by the speed, but never more than MAX_GAP_MS: a run that idled for an hour
 * waiting for an answer should not stall the replay.
 */
import { renderStep } from "./blocks.js";
import { render as renderBlocks } from "./card.js";
import { since } from "./clock.js";
import { el, embedded } from "./dom.js";

const MAX_GAP_MS = 1500;
const MIN_GAP_MS = 120;
const AXIS_POINTS = 4; // intervals: five labels
const DELIVERIES = new Set(["task.delivered", "task.blocked", "task.no_changes"]);
const STATUS_TEXT = { submitted: "delivered", blocked: "blocked", no_changes: "no changes" };

const data = embedded("replay-data");
const start = data.events.length ? data.events[0].ts : null;

const playButton = document.getElementById("play");
const speedSelect = document.getElementById("speed");
const runSelect = document.getElementById("run-filter");
const scrubber = document.getElementById("scrubber");
const marks = document.getElementById("scrub-marks");
const axis = document.getElementById("scrub-axis");
const positionOut = document.getElementById("position");
const stage = document.getElementById("stage");
const stageEmpty = document.getElementById("stage-empty");
const versionSelect = document.getElementById("delivery-version");
const deliveryBox = document.getElementById("replay-delivery");
const deliveryNone = document.getElementById("replay-delivery-none");
const deliveryAt = document.getElementById("delivery-at");

let events = [];
let shown = 0; // how many of `events` are on the stage
let lastRun = null; // the run of the newest line on the stage, for run headings
let playing = false;
let timer = null;

// Runs in the order they started: "Run 1", "Run 2"… with their app and how they ended.
const runs = new Map(data.runs.map((run, index) => [run.run_id, { ...run, number: index + 1 }]));
const runStart = new Map();
data.events.forEach((frame) => {
  if (frame.run_id && !runStart.has(frame.run_id)) {
    runStart.set(frame.run_id, frame.ts);
  }
});
runs.forEach((run) => {
  const option = el("option", "", `Run ${run.number} · ${run.app_id} · ${run.status}`);
  option.value = run.run_id;
  runSelect.appendChild(option);
});

function offset(stamp) {
  return start && stamp ? since(start, stamp) : "";
}

// A line's time: "+mm:ss" from the first event; the wall-clock time (UTC) on hover.
function timeOf(frame) {
  const time = el("time", "step__time", offset(frame.ts));
  if (frame.ts) {
    time.setAttribute("datetime", frame.ts);
    time.title = `${frame.ts.slice(0, 19).replace("T", " ")} UTC`;
  }
  return time;
}

function line(frame, kind, text) {
  const row = el("li", `step step--note step--${kind}`);
  row.setAttribute("data-seq", String(frame.seq));
  row.appendChild(timeOf(frame));
  row.appendChild(el("span", "step__message", text));
  return row;
}

function describe(frame) {
  switch (frame.type) {
    case "os.harness.step": {
      const row = renderStep(frame);
      row.querySelector(".step__time").replaceWith(timeOf(frame));
      return row;
    }
    case "task.interrupted":
      return line(frame, "question", `Asked: ${frame.question}`);
    case "task.delivered":
    case "task.blocked":
    case "task.no_changes":
      return line(frame, "delivery", `Delivery v${frame.version} (${STATUS_TEXT[frame.status] || frame.status})`);
    case "task.timeline":
      if (frame.kind === "answer") {
        const who = frame.actor && frame.actor.username ? ` (${frame.actor.username})` : "";
        return line(frame, "answer", `Answered${who}: ${frame.summary}`);
      }
      return line(frame, "system", frame.summary || frame.kind);
    default:
      return line(frame, "system", frame.type);
  }
}

function runHeading(runId) {
  const run = runs.get(runId);
  const row = el("li", "run-heading");
  row.setAttribute("data-run-id", runId);
  const title = run ? `Run ${run.number} · ${run.app_id}` : "Run";
  row.appendChild(el("h3", "run-heading__title", title));
  const facts = [];
  if (runStart.has(runId)) {
    facts.push(`started ${offset(runStart.get(runId))}`);
  }
  if (run) {
    facts.push(run.status);
  }
  row.appendChild(el("span", "run-heading__facts muted small", facts.join(" · ")));
  return row;
}

// --- where the scrubber is -------------------------------------------------------------

// The delivery version current after the first `count` events (null: none yet).
function versionAt(count) {
  for (let i = count - 1; i >= 0; i -= 1) {
    if (DELIVERIES.has(events[i].type)) {
      return events[i].version;
    }
  }
  return null;
}

function label() {
  if (playing) {
    return "Pause";
  }
  if (events.length && shown >= events.length) {
    return "Restart";
  }
  return "Play";
}

function show(upTo) {
  // Forward: append only the new lines. Backward (scrubbing): rebuild.
  if (upTo < shown) {
    stage.textContent = "";
    shown = 0;
    lastRun = null;
  }
  for (; shown < upTo; shown += 1) {
    const frame = events[shown];
    if (frame.run_id && frame.run_id !== lastRun) {
      stage.appendChild(runHeading(frame.run_id));
      lastRun = frame.run_id;
    }
    stage.appendChild(describe(frame));
  }
  scrubber.value = String(shown);
  const at = shown ? offset(events[shown - 1].ts) : "+00:00";
  positionOut.textContent = `${shown} / ${events.length} · ${at}`;
  scrubber.setAttribute("aria-valuetext", `event ${shown} of ${events.length}, ${at}`);
  stageEmpty.hidden = shown > 0;
  playButton.textContent = label();
  showDelivery(versionAt(shown), at);
  const last = stage.lastElementChild;
  if (last && playing) {
    last.scrollIntoView({ block: "nearest" });
  }
}

// --- playback --------------------------------------------------------------------------

function gapBefore(index) {
  if (index === 0) {
    return MIN_GAP_MS;
  }
  let gap = Date.parse(events[index].ts) - Date.parse(events[index - 1].ts);
  if (!Number.isFinite(gap)) {
    gap = MIN_GAP_MS;
  }
  const speed = Number(speedSelect.value) || 1;
  return Math.max(MIN_GAP_MS, Math.min(MAX_GAP_MS, gap)) / speed;
}

function tick() {
  if (shown >= events.length) {
    pause();
    return;
  }
  show(shown + 1);
  if (shown >= events.length) {
    pause();
    return;
  }
  timer = window.setTimeout(tick, gapBefore(shown));
}

function play() {
  if (shown >= events.length) {
    show(0); // from the start again
  }
  playing = true;
  playButton.textContent = label();
  playButton.setAttribute("aria-pressed", "true");
  timer = window.setTimeout(tick, gapBefore(shown));
}

function pause() {
  playing = false;
  window.clearTimeout(timer);
  timer = null;
  playButton.textContent = label();
  playButton.setAttribute("aria-pressed", "false");
}

// Jumping (scrubber, a mark, a version) stops playback where it lands.
function jump(position) {
  pause();
  show(position);
}

// --- the scrubber's marks and time axis ------------------------------------------------

function place(node, position) {
  // A range input's thumb travels from its first to its last value; the marks and the
  // axis are laid over the same track (see .scrub__marks in task.css).
  const fraction = events.length ? position / events.length : 0;
  node.style.left = `${(fraction * 100).toFixed(3)}%`;
}

function drawMarks() {
  marks.textContent = "";
  events.forEach((frame, index) => {
    const question = frame.type === "task.interrupted";
    if (!question && !DELIVERIES.has(frame.type)) {
      return;
    }
    const what = question ? `Question: ${frame.question}` : `Delivery v${frame.version} (${STATUS_TEXT[frame.status] || frame.status})`;
    const mark = el("button", `scrub__mark scrub__mark--${question ? "question" : "delivery"}`);
    mark.type = "button";
    mark.setAttribute("data-position", String(index + 1));
    mark.setAttribute("aria-label", `${what}, at ${offset(frame.ts)}`);
    mark.title = `${what} · ${offset(frame.ts)}`;
    place(mark, index + 1);
    mark.addEventListener("click", () => jump(index + 1));
    marks.appendChild(mark);
  });
}

function drawAxis() {
  axis.textContent = "";
  if (!events.length) {
    return;
  }
  const seen = new Set();
  for (let point = 0; point <= AXIS_POINTS; point += 1) {
    const position = Math.round((events.length * point) / AXIS_POINTS);
    if (seen.has(position)) {
      continue;
    }
    seen.add(position);
    const frame = events[Math.max(0, position - 1)];
    const tick = el("span", "scrub__tick", position ? offset(frame.ts) : "+00:00");
    if (point === 0) {
      tick.classList.add("scrub__tick--first");
    } else if (point === AXIS_POINTS) {
      tick.classList.add("scrub__tick--last");
    } else if (point * 2 !== AXIS_POINTS) {
      tick.classList.add("scrub__tick--minor"); // left out at phone width
    }
    place(tick, position);
    axis.appendChild(tick);
  }
}

// --- the delivery panel ----------------------------------------------------------------

let shownVersion;

function showDelivery(version, at) {
  if (!versionSelect || version === shownVersion) {
    if (deliveryAt) {
      deliveryAt.textContent = `as of ${at}`;
    }
    return;
  }
  shownVersion = version;
  deliveryAt.textContent = `as of ${at}`;
  versionSelect.value = version === null ? "" : String(version);
  deliveryBox.textContent = "";
  deliveryNone.hidden = version !== null;
  const delivery = data.deliveries.find((d) => d.version === version);
  if (delivery) {
    const card = renderBlocks(delivery.blocks, { readOnly: true });
    card.setAttribute("data-version", String(delivery.version));
    card.setAttribute("data-status", String(delivery.status));
    deliveryBox.appendChild(card);
  }
}

// Where delivery `version` happened in the events played (-1: not among them).
function positionOf(version) {
  return events.findIndex((frame) => DELIVERIES.has(frame.type) && frame.version === version) + 1;
}

function pickVersion(version) {
  let position = positionOf(version);
  if (!position && runSelect.value) {
    runSelect.value = ""; // another run's delivery: play all runs
    load(false);
    position = positionOf(version);
  }
  jump(position || events.length);
}

// --- wiring ----------------------------------------------------------------------------

function load(atEnd = true) {
  const run = runSelect.value;
  events = data.events.filter((frame) => !run || frame.run_id === run);
  scrubber.max = String(events.length);
  drawMarks();
  drawAxis();
  pause();
  show(0);
  if (atEnd) {
    show(events.length);
  }
}

playButton.addEventListener("click", () => (playing ? pause() : play()));
scrubber.addEventListener("input", () => jump(Number(scrubber.value)));
runSelect.addEventListener("change", () => load());
speedSelect.addEventListener("change", () => {
  if (playing) {
    window.clearTimeout(timer);
    timer = window.setTimeout(tick, gapBefore(shown));
  }
});
if (versionSelect) {
  // Human times, and how far into the log each version came.
  data.deliveries.forEach((delivery) => {
    const option = versionSelect.querySelector(`option[value="${delivery.version}"]`);
    if (option && delivery.created_display) {
      const at = offset(delivery.created_at);
      option.textContent = `v${delivery.version} · ${STATUS_TEXT[delivery.status] || delivery.status} · ${delivery.created_display}${at ? ` (${at})` : ""}`;
    }
  });
  versionSelect.addEventListener("change", () => pickVersion(Number(versionSelect.value)));
}

// The page opens on the whole log and the latest delivery; ?version=N opens where that
// version was delivered.
load();
const wanted = Number(new URLSearchParams(window.location.search).get("version"));
if (wanted && data.deliveries.some((d) => d.version === wanted)) {
  pickVersion(wanted);
}
