/*
 * The replay page: a task's persisted events played back in seq order, and the block
 * sequence of any of its deliveries.
 *
 * Playback waits between two events as long as they were apart when they happened,
 * divided by the speed, but never more than MAX_GAP_MS: a run that idled for an hour
 * waiting for an answer should not stall the replay. The scrubber jumps to any event;
 * the stage then shows every event up to it.
 */
import { render as renderBlocks, renderStep } from "./blocks.js";
import { el, embedded } from "./dom.js";

const MAX_GAP_MS = 1500;
const MIN_GAP_MS = 120;

const data = embedded("replay-data");

const playButton = document.getElementById("play");
const speedSelect = document.getElementById("speed");
const runSelect = document.getElementById("run-filter");
const scrubber = document.getElementById("scrubber");
const positionOut = document.getElementById("position");
const stage = document.getElementById("stage");
const stageEmpty = document.getElementById("stage-empty");
const versionSelect = document.getElementById("delivery-version");
const deliveryBox = document.getElementById("replay-delivery");

let events = [];
let shown = 0; // how many of `events` are on the stage
let playing = false;
let timer = null;

data.runs.forEach((run, index) => {
  const option = el("option", "", `Run ${index + 1} · ${run.app_id} · ${run.status}`);
  option.value = run.run_id;
  runSelect.appendChild(option);
});

function line(frame, kind, text) {
  const row = el("li", `step step--note step--${kind}`);
  row.setAttribute("data-seq", String(frame.seq));
  row.appendChild(el("time", "step__time", (frame.ts || "").slice(11, 19)));
  row.appendChild(el("span", "step__message", text));
  return row;
}

function describe(frame) {
  switch (frame.type) {
    case "os.harness.step":
      return renderStep(frame);
    case "task.interrupted":
      return line(frame, "question", `Asked: ${frame.question}`);
    case "task.delivered":
    case "task.blocked":
    case "task.no_changes": {
      const row = line(frame, "delivery", `Delivery v${frame.version} (${frame.status})`);
      const show = el("button", "linklike", "show blocks");
      show.type = "button";
      show.addEventListener("click", () => selectVersion(frame.version));
      row.append(" ", show);
      return row;
    }
    case "task.timeline":
      return line(frame, "system", frame.summary || frame.kind);
    default:
      return line(frame, "system", frame.type);
  }
}

function show(upTo) {
  // Forward: append only the new lines. Backward (scrubbing): rebuild.
  if (upTo < shown) {
    stage.textContent = "";
    shown = 0;
  }
  for (; shown < upTo; shown += 1) {
    stage.appendChild(describe(events[shown]));
  }
  scrubber.value = String(shown);
  positionOut.textContent = `${shown} / ${events.length}`;
  stageEmpty.hidden = shown > 0;
  const last = stage.lastElementChild;
  if (last && playing) {
    last.scrollIntoView({ block: "nearest" });
  }
}

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
  timer = window.setTimeout(tick, shown < events.length ? gapBefore(shown) : 0);
}

function play() {
  if (shown >= events.length) {
    show(0); // from the start again
  }
  playing = true;
  playButton.textContent = "Pause";
  playButton.setAttribute("aria-pressed", "true");
  timer = window.setTimeout(tick, gapBefore(shown));
}

function pause() {
  playing = false;
  window.clearTimeout(timer);
  timer = null;
  playButton.textContent = shown >= events.length && events.length ? "Replay" : "Play";
  playButton.setAttribute("aria-pressed", "false");
}

function load() {
  const run = runSelect.value;
  events = data.events.filter((frame) => !run || frame.run_id === run);
  scrubber.max = String(events.length);
  pause();
  show(0);
}

playButton.addEventListener("click", () => (playing ? pause() : play()));
scrubber.addEventListener("input", () => show(Number(scrubber.value)));
runSelect.addEventListener("change", load);
speedSelect.addEventListener("change", () => {
  if (playing) {
    window.clearTimeout(timer);
    timer = window.setTimeout(tick, gapBefore(shown));
  }
});

function showVersion() {
  const version = Number(versionSelect.value);
  const delivery = data.deliveries.find((d) => d.version === version);
  deliveryBox.textContent = "";
  if (delivery) {
    const card = renderBlocks(delivery.blocks, { readOnly: true });
    card.setAttribute("data-version", String(delivery.version));
    deliveryBox.appendChild(card);
  }
}

function selectVersion(version) {
  if (!versionSelect) {
    return;
  }
  versionSelect.value = String(version);
  showVersion();
  deliveryBox.scrollIntoView({ block: "nearest" });
}

if (versionSelect) {
  const wanted = new URLSearchParams(window.location.search).get("version");
  if (wanted && versionSelect.querySelector(`option[value="${CSS.escape(wanted)}"]`)) {
    versionSelect.value = wanted;
  }
  versionSelect.addEventListener("change", showVersion);
  showVersion();
}
load();
