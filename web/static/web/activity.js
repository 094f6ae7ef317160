/*
 * The task page's "what is going on" strip: the step the harness is on, how long the run
 * has been going, which harness app runs it (and its run id), and how long its lease has
 * left. Shown while a run is live and the task is working or waiting for an answer.
 *
 * Frames keep it current: a claim starts a run, a step changes the active step, a
 * result, release or expiry ends it. Heartbeats renew the lease without an event (they
 * would flood the log), so while the strip is shown the page reads the task every
 * POLL_MS for its lease, and at once when the countdown runs out.
 */
import { getJSON } from "./api.js";
import { duration, serverClock } from "./clock.js";

const POLL_MS = 15000;
const LOW_LEASE_MS = 60000;
// Timeline entries that end the run they name.
const ENDS = new Set(["result", "release", "lease_expired", "lease_revoked", "cancel_acknowledged"]);

export function activityStrip({ config, element, steps }) {
  const clock = serverClock(config.now);
  const label = element.querySelector("#activity-label");
  const stepText = element.querySelector("#activity-step");
  const elapsed = element.querySelector("#activity-elapsed");
  const app = element.querySelector("#activity-app");
  const runText = element.querySelector("#activity-run");
  const lease = element.querySelector("#activity-lease");

  let run = config.run && config.run.status === "live" ? { ...config.run } : null;
  let status = config.status;
  let timer = null;
  let lastPoll = clock.now();
  let polling = false;

  function shown() {
    return Boolean(run) && (status === "in_progress" || status === "paused");
  }

  function tick() {
    if (!run) {
      return;
    }
    const now = clock.now();
    elapsed.textContent = run.started_at ? duration(now - Date.parse(run.started_at)) : "–";
    const left = Date.parse(run.lease_expires_at) - now;
    lease.textContent = left > 0 ? `${duration(left)} left` : "due: waiting for a heartbeat";
    lease.classList.toggle("is-low", left < LOW_LEASE_MS);
    if ((left <= 0 && now - lastPoll > 2000) || now - lastPoll >= POLL_MS) {
      poll();
    }
  }

  function paint() {
    element.hidden = !shown();
    if (element.hidden) {
      window.clearInterval(timer);
      timer = null;
      return;
    }
    element.setAttribute("data-status", status);
    label.textContent = status === "paused" ? "Waiting for your answer" : "Working";
    app.textContent = run.app_id || "–";
    runText.textContent = run.run_id;
    tick();
    if (timer === null) {
      timer = window.setInterval(tick, 1000);
    }
  }

  // The task as the API has it now: the live run's lease (renewed by heartbeats).
  async function poll() {
    if (polling || document.hidden || !config.urls.detail) {
      return;
    }
    polling = true;
    lastPoll = clock.now();
    try {
      const answer = await getJSON(config.urls.detail);
      if (!answer.ok || !run) {
        return;
      }
      const live = answer.data.live_run;
      if (!live) {
        run = null; // ended while nobody was told (an expiry the server just recorded)
      } else if (live.run_id === run.run_id) {
        run.lease_expires_at = live.lease_expires_at;
      } else {
        run = { run_id: live.run_id, app_id: live.app_id, lease_expires_at: live.lease_expires_at };
      }
      status = answer.data.status || status;
      paint();
    } catch {
      // offline for a moment: the next tick asks again
    } finally {
      polling = false;
    }
  }

  // The latest step of the run already on the page (server-rendered or replayed).
  function stepOnPage() {
    if (!run) {
      return "";
    }
    const lines = steps.querySelectorAll(`li.step[data-run-id="${CSS.escape(run.run_id)}"] .step__message`);
    return lines.length ? lines[lines.length - 1].textContent : "";
  }

  stepText.textContent = stepOnPage();
  paint();

  return {
    setStatus(next) {
      status = next;
      paint();
    },
    onFrame(frame) {
      if (frame.type === "os.harness.step") {
        if (run && frame.run_id === run.run_id) {
          stepText.textContent = frame.user_message || "";
        }
        return;
      }
      if (frame.type !== "task.timeline") {
        return;
      }
      if (frame.kind === "claim" || frame.kind === "reclaim") {
        const same = run && run.run_id === frame.run_id;
        run = {
          run_id: frame.run_id,
          app_id: frame.app_id,
          started_at: same ? run.started_at : frame.ts,
          lease_expires_at: frame.lease_expires_at,
        };
        if (!same) {
          stepText.textContent = "";
        }
        lastPoll = clock.now();
        paint();
      } else if (ENDS.has(frame.kind) && run && frame.run_id === run.run_id) {
        run = null;
        paint();
      }
    },
  };
}
