/*
 * The one renderer of delivery blocks, for the live card, the reloaded page (blocks
 * embedded with json_script) and the replay page alike.
 *
 * Every string goes in with textContent. The one exception is a summary block's `html`,
 * which the server has already rendered and sanitized (corpus.rendering, nh3 allowlist);
 * it is parsed through a <template> element, where scripts never run. URLs become links
 * only when they are same-site paths or http(s) URLs already in the browser's own form.
 * Unknown block types get a small generic box, so a newer server never breaks an older
 * page.
 */
import { el, token } from "./dom.js";

const STATUS_TEXT = {
  submitted: "Delivered",
  blocked: "Blocked",
  no_changes: "No changes",
};

// A link only of what reads the same to the browser as it is written: an http(s) URL
// that the browser's own parser serializes to exactly this string (no backslash, tab,
// userinfo or dot segment it would quietly rewrite; the server stores URLs in that
// form, see delivery/links.py), or a path on this site.
export function safeUrl(url) {
  if (typeof url !== "string" || /[\\\s@%]/.test(url) || /[^\x21-\x7e]/.test(url)) {
    return null;
  }
  let parsed;
  try {
    if (url.charAt(0) === "/" && url.charAt(1) !== "/") {
      parsed = new URL(url, window.location.origin);
      return parsed.origin === window.location.origin ? url : null;
    }
    parsed = new URL(url);
  } catch (error) {
    return null;
  }
  if ((parsed.protocol !== "https:" && parsed.protocol !== "http:") || parsed.href !== url) {
    return null;
  }
  return url;
}

// The GitHub check's state in the verdict: its words and its pill.
const PR_CHECK_TEXT = {
  verified: ["Verified on GitHub", "pill--ok"],
  mismatch: ["Differs on GitHub", "pill--warn"],
  not_found: ["Not found on GitHub", "pill--warn"],
  unavailable: ["GitHub unavailable, retrying", "pill--warn"],
  pending: ["Verifying on GitHub…", ""],
  not_configured: ["Not verified on GitHub", ""],
};
const FACT_MARK = { verified: "✓", mismatch: "✗", not_checked: "–" };
const FACT_TEXT = { verified: "verified", mismatch: "differs", not_checked: "not checked" };

function link(url, text, className) {
  let href = safeUrl(url);
  if (!href) {
    return el("span", className, text);
  }
  let anchor = el("a", className, text);
  anchor.href = href;
  if (/^https?:/i.test(href)) {
    anchor.target = "_blank";
    anchor.rel = "noopener noreferrer";
  }
  return anchor;
}

function section(block, title) {
  let node = el("section", "block block--" + token(block.type, /[^a-z0-9_-]/gi));
  node.setAttribute("data-block", String(block.type));
  if (title) {
    node.appendChild(el("h3", "block__title", title));
  }
  return node;
}

const renderers = {
  outcome: function (block, context) {
    let node = section(block);
    let status = String(block.status || "");
    let verdict = block.verdict && typeof block.verdict === "object" ? block.verdict : {};
    // Green only for what was checked: a submitted result is shown as delivered (green)
    // only when its PR passed the scope check; without one it is plainly "Submitted".
    let proven = status !== "submitted" || verdict.scope === "verified";
    // The green background too: a submitted result without a PR is not green anywhere.
    node.classList.add("outcome--" + (proven ? token(status) : "unverified"));
    let head = el("div", "outcome__head");
    let badge = proven ? "status status--" + token(status) : "status status--unverified";
    head.appendChild(el("span", badge, proven ? STATUS_TEXT[status] || status : "Submitted"));
    // A blocked result's headline is its question: say it once. On the task page the
    // question box shows it (with its answer box), so the card only points there.
    let blocked = status === "blocked" && Boolean(block.question);
    let elsewhere = blocked && context.questionElsewhere && context.questionElsewhere(block);
    head.appendChild(
      el("h2", "outcome__headline", blocked ? "Blocked: the harness needs an answer" : block.headline)
    );
    node.appendChild(head);
    let facts = el("div", "outcome__verdict");
    // Older payloads carried `in_scope`/`checklist_met`: they are not shown, since they
    // claimed more than was checked (CONTRACT.md §7).
    if (verdict.scope === "verified") {
      facts.appendChild(el("span", "pill pill--ok", "Scope verified")).setAttribute("data-fact", "scope");
    } else if (verdict.scope === "no_pr") {
      facts.appendChild(el("span", "pill pill--warn", "No pull request")).setAttribute("data-fact", "scope");
    }
    let prCheck = PR_CHECK_TEXT[verdict.pr_check];
    if (prCheck) {
      facts.appendChild(el("span", "pill " + prCheck[1], prCheck[0])).setAttribute("data-fact", "pr_check");
    }
    if (typeof verdict.checklist_total === "number" && verdict.checklist_total > 0) {
      let mentioned = typeof verdict.checklist_mentioned === "number" ? verdict.checklist_mentioned : 0;
      facts
        .appendChild(el("span", "pill", "Mentioned " + mentioned + "/" + verdict.checklist_total + " (not verified)"))
        .setAttribute("data-fact", "checklist");
    }
    node.appendChild(facts);
    if (verdict.summary) {
      node.appendChild(el("p", "outcome__summary", verdict.summary));
    }
    // The headline is the reason's first line: the rest only when there is more.
    if (block.reason && String(block.reason).trim() !== block.headline) {
      node.appendChild(el("p", "outcome__reason", block.reason));
    }
    if (elsewhere) {
      node.appendChild(el("p", "outcome__question-ref", "Its question is in the box above, where you answer it."));
    } else if (block.question && (blocked || block.question !== block.headline)) {
      node.appendChild(el("p", "outcome__question", block.question));
    }
    if (Array.isArray(verdict.not_checked) && verdict.not_checked.length) {
      let box = el("div", "outcome__not-checked");
      box.appendChild(el("strong", "", "Not checked:"));
      let list = el("ul", "");
      verdict.not_checked.forEach(function (line) {
        list.appendChild(el("li", "", line));
      });
      box.appendChild(list);
      node.appendChild(box);
    }
    if (block.agent_status) {
      node.appendChild(el("p", "outcome__agent muted small", "Harness: " + block.agent_status));
    }
    return node;
  },

  checks: function (block) {
    let node = section(block, "Checked on GitHub");
    node.setAttribute("data-state", String(block.state || ""));
    if (block.summary) {
      node.appendChild(el("p", "checks__summary", block.summary));
    }
    let facts = el("ul", "checks__facts");
    (Array.isArray(block.facts) ? block.facts : []).forEach(function (fact) {
      if (!fact || typeof fact !== "object") {
        return;
      }
      let status = String(fact.status || "");
      let row = el("li", "checks__fact is-" + token(status));
      row.setAttribute("data-fact", String(fact.name || ""));
      row.appendChild(el("span", "checks__mark", FACT_MARK[status] || "?")).setAttribute("aria-label", status);
      let text = String(fact.name || "").replace(/_/g, " ") + ": " + (FACT_TEXT[status] || status);
      if (fact.actual) {
        text += " (GitHub: " + fact.actual + (fact.expected && status === "mismatch" ? "; result said " + fact.expected : "") + ")";
      }
      row.appendChild(el("span", "", text));
      facts.appendChild(row);
    });
    node.appendChild(facts);
    let runs = Array.isArray(block.check_runs) ? block.check_runs : [];
    if (runs.length) {
      let list = el("ul", "checks__runs");
      runs.forEach(function (run) {
        if (!run || typeof run !== "object") {
          return;
        }
        let row = el("li", "checks__run");
        row.setAttribute("data-conclusion", String(run.conclusion || run.status || ""));
        row.appendChild(link(run.url, run.name || "check", "checks__run-name"));
        row.appendChild(document.createTextNode(": " + (run.conclusion || run.status || "unknown")));
        list.appendChild(row);
      });
      node.appendChild(list);
    }
    return node;
  },

  hero: function (block) {
    // The task's title is the page's heading already: the card says where the change is.
    let node = section(block);
    let pr = block.pr;
    let line = el("p", "hero__pr");
    if (pr && typeof pr === "object") {
      let label = "Pull request" + (pr.number ? " #" + pr.number : "") + (pr.title ? ": " + pr.title : "");
      line.appendChild(link(pr.url, label, "hero__pr-link"));
      if (pr.branch) {
        line.appendChild(document.createTextNode(" from "));
        line.appendChild(el("code", "hero__branch", pr.branch));
      }
    } else {
      line.appendChild(el("span", "muted", "No pull request"));
    }
    let repo = block.repository;
    if (repo && typeof repo === "object") {
      line.appendChild(document.createTextNode(" in "));
      line.appendChild(link(repo.url, repo.name || repo.url, "hero__repo"));
    }
    node.appendChild(line);
    return node;
  },

  summary: function (block) {
    let node = section(block, "Summary");
    let body = el("div", "markdown");
    if (typeof block.html === "string") {
      // Server-sanitized (nh3); a <template> parses without running anything.
      let template = document.createElement("template");
      template.innerHTML = block.html;
      body.appendChild(template.content);
    } else if (block.markdown) {
      body.appendChild(el("pre", "doc-body", block.markdown));
    }
    node.appendChild(body);
    return node;
  },

  checklist: function (block) {
    let node = section(block, "Definition of done");
    if (block.method) {
      node.appendChild(el("p", "muted small", "Checked by: " + block.method));
    }
    let list = el("ul", "checklist");
    (Array.isArray(block.items) ? block.items : []).forEach(function (item) {
      // A mention is the harness's own word, never "met" (older payloads: `mentioned`).
      let mentioned = Boolean(item && (item.status === "mentioned" || item.mentioned === true));
      let row = el("li", "checklist__item " + (mentioned ? "is-mentioned" : "is-open"));
      let label = mentioned ? "mentioned by the harness, not verified" : "not mentioned";
      row.appendChild(el("span", "checklist__mark", mentioned ? "…" : "○")).setAttribute("aria-label", label);
      let text = el("div", "checklist__text");
      text.appendChild(el("span", "", item && item.text));
      text.appendChild(el("span", "checklist__status", mentioned ? "Mentioned, not verified" : "Not mentioned"));
      if (item && item.evidence) {
        text.appendChild(el("span", "checklist__evidence", item.evidence));
      }
      row.appendChild(text);
      list.appendChild(row);
    });
    node.appendChild(list);
    return node;
  },

  timeline: function (block) {
    let node = section(block, "How it went");
    let list = el("ol", "steps steps--compact");
    (Array.isArray(block.steps) ? block.steps : []).forEach(function (step) {
      list.appendChild(renderStep(step));
    });
    node.appendChild(list);
    if (typeof block.omitted === "number" && block.omitted > 0) {
      node.appendChild(el("p", "muted small", block.omitted + " steps in the middle left out; the replay page has all " + block.total + "."));
    } else if (typeof block.total === "number" && typeof block.shown === "number" && block.total > block.shown) {
      node.appendChild(el("p", "muted small", block.total + " steps, repeats folded."));
    }
    return node;
  },

  actions: function (block, context) {
    let node = section(block);
    let bar = el("div", "actions");
    let said = el("p", "actions__result muted small");
    said.hidden = true;

    function postButton(action, label, body, className) {
      let control = el("button", "button" + (className ? " " + className : ""), label);
      control.type = "button";
      let url = safeUrl(action.url);
      if (!url || context.readOnly || !context.post) {
        control.disabled = true; // the replay page shows actions; the task page runs them
        return control;
      }
      control.addEventListener("click", function () {
        let buttons = bar.querySelectorAll("button");
        buttons.forEach(function (b) {
          b.disabled = true;
        });
        context
          .post(url, body)
          .then(function (answer) {
            said.hidden = false;
            said.textContent = answer.ok
              ? context.done(action, answer.data, body) || "Done."
              : (answer.data && answer.data.detail) || "The server said no (" + answer.status + ").";
            if (answer.ok && body.rating) {
              markRating(bar, body.rating);
            }
          })
          .catch(function () {
            said.hidden = false;
            said.textContent = "Could not reach the server; try again.";
          })
          .then(function () {
            buttons.forEach(function (b) {
              b.disabled = false;
            });
          });
      });
      return control;
    }

    (Array.isArray(block.actions) ? block.actions : []).forEach(function (action) {
      if (!action || typeof action !== "object") {
        return;
      }
      let kind = String(action.kind || "");
      let method = String(action.method || "GET").toUpperCase();
      let label = action.label || kind;
      let control;
      if (method === "GET") {
        control = link(action.url, label, "button" + (kind === "open_pr" ? " button--primary" : ""));
      } else if (kind === "answer") {
        // The question box of the task page takes the answer; this button leads there.
        control = el("button", "button button--primary", label);
        control.type = "button";
        control.disabled = context.readOnly || !context.focusAnswer;
        control.addEventListener("click", function () {
          context.focusAnswer();
        });
      } else if (kind === "feedback") {
        control = el("span", "actions__group");
        control.appendChild(el("span", "muted small", label));
        let ratings = (action.choices && action.choices.rating) || ["up", "down"];
        ratings.forEach(function (rating) {
          // Words, not emoji: not every system has an emoji font.
          let text = rating === "up" ? "Good" : rating === "down" ? "Not good" : rating;
          let button = postButton(action, text, { rating: rating });
          button.setAttribute("data-rating", rating);
          button.setAttribute("aria-pressed", "false");
          control.appendChild(button);
        });
        // The viewer's stored rating of this delivery (read back by the server).
        if (context.rating) {
          markRating(control, context.rating);
          said.hidden = false;
          said.textContent = context.rating === "up" ? "You rated this good." : context.rating === "down" ? "You rated this not good." : "";
        }
      } else if (kind === "reopen" && context.askReopen && !context.readOnly) {
        // The task page asks first (and takes feedback for the next run); see task.js.
        control = el("button", "button", label);
        control.type = "button";
        control.addEventListener("click", function () {
          context.askReopen(action, control);
        });
      } else {
        control = postButton(action, label, {});
      }
      control.setAttribute("data-action", kind);
      bar.appendChild(control);
    });
    node.appendChild(bar);
    node.appendChild(said);
    return node;
  },
};

// Shows which rating is the viewer's: the pressed button.
function markRating(root, rating) {
  root.querySelectorAll("button[data-rating]").forEach(function (button) {
    let pressed = button.getAttribute("data-rating") === rating;
    button.setAttribute("aria-pressed", pressed ? "true" : "false");
    button.classList.toggle("is-chosen", pressed);
  });
}

function renderUnknown(block) {
  let node = el("section", "block block--unknown");
  node.setAttribute("data-block", String(block && block.type));
  node.appendChild(el("span", "muted small", "Block “" + String(block && block.type) + "”"));
  let text = block && (block.title || block.headline || block.text);
  if (text) {
    node.appendChild(el("p", "", text));
  }
  return node;
}

// A narration line: the same markup as the server-rendered steps of the task page.
export function renderStep(step) {
  let row = el("li", "step");
  if (typeof step.seq === "number") {
    row.setAttribute("data-seq", String(step.seq));
  }
  if (step.run_id) {
    row.setAttribute("data-run-id", String(step.run_id));
  }
  let time = el("time", "step__time", typeof step.ts === "string" ? step.ts.slice(11, 19) : "");
  if (step.ts) {
    time.setAttribute("datetime", step.ts);
  }
  row.appendChild(time);
  let message = el("span", "step__message", step.user_message);
  if (typeof step.repeat === "number" && step.repeat > 1) {
    message.appendChild(el("span", "step__repeat", "×" + step.repeat));
  }
  row.appendChild(message);
  let debug = el("span", "debug-only step__debug");
  if (step.phase) {
    debug.appendChild(el("code", "", step.phase));
  }
  if (step.internal_label) {
    debug.appendChild(document.createTextNode(" "));
    debug.appendChild(el("code", "", step.internal_label));
  }
  row.appendChild(debug);
  return row;
}

// One block's markup: its type's renderer, or the generic box of an unknown type.
// ``known`` says which, so the card lays out only the types it knows.
export function renderBlock(block, context) {
  let renderer = Object.prototype.hasOwnProperty.call(renderers, block.type) ? renderers[block.type] : null;
  return { node: renderer ? renderer(block, context) : renderUnknown(block), known: Boolean(renderer) };
}
