/*
 * The delivery card: the blocks of a delivery (rendered by blocks.js, the one renderer)
 * laid out for people, for the live card, the reloaded page and the replay page alike.
 */
import { renderBlock } from "./blocks.js";
import { el } from "./dom.js";

/*
 * blocks: the list from a delivery frame or a stored delivery.
 * context: post(url, body) → Promise of {ok, status, data} (runs POST actions: reopen,
 * feedback); done(action, data, body) → the text to show after one succeeded;
 * focusAnswer() for the `answer` action; askReopen(action) to confirm a reopen (with
 * feedback) before posting it; readOnly shows actions without running them.
 */
export function render(blocks, context) {
  context = context || {};
  if (!context.done) {
    context.done = function () {
      return "";
    };
  }
  let card = el("article", "delivery-card");
  let made = {};
  let others = [];
  (Array.isArray(blocks) ? blocks : []).forEach(function (block) {
    if (!block || typeof block !== "object") {
      return;
    }
    let rendered = renderBlock(block, context);
    if (rendered.known && !made[block.type]) {
      made[block.type] = { block: block, node: rendered.node };
    } else {
      others.push(rendered.node);
    }
  });
  layOut(card, made, others);
  return card;
}

// The card leads with the outcome and what to do about it (open the PR, rate, reopen),
// then where the change is and the harness's summary. How things were checked (the
// GitHub facts, the definition-of-done mention check) and how the run went are folded
// into <details>: there when wanted, not in the way. What was *not* checked stays in
// the outcome, in plain words, always visible (CONTRACT.md §7).
function layOut(card, made, others) {
  function put(parent, type) {
    if (made[type]) {
      parent.appendChild(made[type].node);
    }
  }
  put(card, "outcome");
  let outcome = made.outcome ? made.outcome.node : null;
  if (outcome && made.actions) {
    // Right under the headline and its marks, before the longer "Not checked" words.
    outcome.insertBefore(made.actions.node, outcome.querySelector(".outcome__not-checked, .outcome__agent"));
  } else {
    put(card, "actions");
  }
  put(card, "hero");
  // A no-changes summary falls back to the reason (delivery/compose.py): not twice.
  let reason = made.outcome && made.outcome.block.reason;
  let summary = made.summary && made.summary.block;
  if (!(reason && summary && String(summary.markdown || "").trim() === String(reason).trim())) {
    put(card, "summary");
  }
  others.forEach(function (node) {
    card.appendChild(node);
  });
  let checked = fold("checked", "What was checked, and how");
  let verdictText = outcome && outcome.querySelector(".outcome__summary");
  if (verdictText) {
    checked.appendChild(verdictText);
  }
  put(checked, "checks");
  put(checked, "checklist");
  if (checked.childElementCount > 1) {
    let checks = made.checks && made.checks.block;
    // A difference found on GitHub or a failing check run is opened, not folded away.
    let runs = checks && Array.isArray(checks.check_runs) ? checks.check_runs : [];
    checked.open = Boolean(
      checks && (checks.state === "mismatch" || runs.some(function (run) {
        return run && run.conclusion === "failure";
      }))
    );
    card.appendChild(checked);
  }
  let timeline = made.timeline && made.timeline.block;
  let steps = timeline && typeof timeline.total === "number" ? timeline.total : 0;
  let went = fold("timeline", steps ? "How it went · " + steps + " step" + (steps === 1 ? "" : "s") : "How it went");
  let agent = outcome && outcome.querySelector(".outcome__agent");
  if (agent) {
    went.appendChild(agent);
  }
  put(went, "timeline");
  if (went.childElementCount > 1) {
    card.appendChild(went);
  }
}

function fold(name, title) {
  let details = el("details", "card-more");
  details.setAttribute("data-more", name);
  details.appendChild(el("summary", "card-more__summary", title));
  return details;
}
