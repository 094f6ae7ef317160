/*
 * The replay page: a task's persisted events played back in seq order, and the block
 * sequence of any of its deliveries.
 *
 * Playback waits between two events as long as they were apart when they happened,
 * divided by the speed, but never more than MAX_GAP_MS: a run that idled for an hour
 * waiting for an answer should not stall the replay. The scrubber jumps to any event;
 * the stage then shows every event up to it.
 */
(function () {
  "use strict";

  var MAX_GAP_MS = 1500;
  var MIN_GAP_MS = 120;

  var data = JSON.parse(document.getElementById("replay-data").textContent);
  var el = window.EtherBlocks.el;

  var playButton = document.getElementById("play");
  var speedSelect = document.getElementById("speed");
  var runSelect = document.getElementById("run-filter");
  var scrubber = document.getElementById("scrubber");
  var positionOut = document.getElementById("position");
  var stage = document.getElementById("stage");
  var stageEmpty = document.getElementById("stage-empty");
  var versionSelect = document.getElementById("delivery-version");
  var deliveryBox = document.getElementById("replay-delivery");

  var events = [];
  var shown = 0; // how many of `events` are on the stage
  var timer = null;
  var state = { shown: 0, total: 0, playing: false };
  window.__replay = state;

  data.runs.forEach(function (run, index) {
    var option = el("option", "", "Run " + (index + 1) + " · " + run.app_id + " · " + run.status);
    option.value = run.run_id;
    runSelect.appendChild(option);
  });

  function describe(frame) {
    switch (frame.type) {
      case "os.harness.step":
        return window.EtherBlocks.renderStep(frame);
      case "task.interrupted":
        return line(frame, "question", "Asked: " + frame.question);
      case "task.delivered":
      case "task.blocked":
      case "task.no_changes":
        var row = line(frame, "delivery", "Delivery v" + frame.version + " (" + frame.status + ")");
        var show = el("button", "linklike", "show blocks");
        show.type = "button";
        show.addEventListener("click", function () {
          selectVersion(frame.version);
        });
        row.appendChild(document.createTextNode(" "));
        row.appendChild(show);
        return row;
      case "task.timeline":
        return line(frame, "system", frame.summary || frame.kind);
      default:
        return line(frame, "system", frame.type);
    }
  }

  function line(frame, kind, text) {
    var row = el("li", "step step--note step--" + kind);
    row.setAttribute("data-seq", String(frame.seq));
    var time = el("time", "step__time", (frame.ts || "").slice(11, 19));
    row.appendChild(time);
    row.appendChild(el("span", "step__message", text));
    return row;
  }

  function render(upTo) {
    // Forward: append only the new lines. Backward (scrubbing): rebuild.
    if (upTo < shown) {
      stage.textContent = "";
      shown = 0;
    }
    for (; shown < upTo; shown += 1) {
      stage.appendChild(describe(events[shown]));
    }
    state.shown = shown;
    scrubber.value = String(shown);
    positionOut.textContent = shown + " / " + events.length;
    stageEmpty.hidden = shown > 0;
    var last = stage.lastElementChild;
    if (last && state.playing) {
      last.scrollIntoView({ block: "nearest" });
    }
  }

  function gapBefore(index) {
    if (index === 0) {
      return MIN_GAP_MS;
    }
    var gap = Date.parse(events[index].ts) - Date.parse(events[index - 1].ts);
    if (!isFinite(gap)) {
      gap = MIN_GAP_MS;
    }
    var speed = Number(speedSelect.value) || 1;
    return Math.max(MIN_GAP_MS, Math.min(MAX_GAP_MS, gap)) / speed;
  }

  function tick() {
    if (shown >= events.length) {
      pause();
      return;
    }
    render(shown + 1);
    timer = window.setTimeout(tick, shown < events.length ? gapBefore(shown) : 0);
  }

  function play() {
    if (shown >= events.length) {
      render(0); // from the start again
    }
    state.playing = true;
    playButton.textContent = "Pause";
    playButton.setAttribute("aria-pressed", "true");
    timer = window.setTimeout(tick, gapBefore(shown));
  }

  function pause() {
    state.playing = false;
    window.clearTimeout(timer);
    timer = null;
    playButton.textContent = shown >= events.length && events.length ? "Replay" : "Play";
    playButton.setAttribute("aria-pressed", "false");
  }

  function load() {
    var run = runSelect.value;
    events = data.events.filter(function (frame) {
      return !run || frame.run_id === run;
    });
    state.total = events.length;
    scrubber.max = String(events.length);
    pause();
    render(0);
  }

  playButton.addEventListener("click", function () {
    if (state.playing) {
      pause();
    } else {
      play();
    }
  });
  scrubber.addEventListener("input", function () {
    render(Number(scrubber.value));
  });
  runSelect.addEventListener("change", load);
  speedSelect.addEventListener("change", function () {
    if (state.playing) {
      window.clearTimeout(timer);
      timer = window.setTimeout(tick, gapBefore(shown));
    }
  });

  function selectVersion(version) {
    if (!versionSelect) {
      return;
    }
    versionSelect.value = String(version);
    showVersion();
    deliveryBox.scrollIntoView({ block: "nearest" });
  }

  function showVersion() {
    var version = Number(versionSelect.value);
    var delivery = data.deliveries.filter(function (d) {
      return d.version === version;
    })[0];
    deliveryBox.textContent = "";
    if (delivery) {
      var card = window.EtherBlocks.render(delivery.blocks, { readOnly: true });
      card.setAttribute("data-version", String(delivery.version));
      deliveryBox.appendChild(card);
    }
  }

  if (versionSelect) {
    var wanted = new URLSearchParams(window.location.search).get("version");
    if (wanted && versionSelect.querySelector('option[value="' + CSS.escape(wanted) + '"]')) {
      versionSelect.value = wanted;
    }
    versionSelect.addEventListener("change", showVersion);
    showVersion();
  }
  load();
})();
