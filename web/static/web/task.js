/*
 * The task page: live narration, the open question with its answer box, and the
 * delivery card that replaces the narration in place when the run's result arrives.
 *
 * State on load comes from the server (steps and question as HTML, the delivery as JSON);
 * frames after the embedded positions come over the realtime hub. Applying a frame is
 * idempotent (steps by seq, questions by id, the card by run), because the frames just
 * after the positions may already be part of the page.
 */
import { activityStrip } from "./activity.js";
import { postJSON, problemText } from "./api.js";
import { renderStep } from "./blocks.js";
import { render } from "./card.js";
import { el, embedded, token } from "./dom.js";
import { connect, showState } from "./realtime.js";

const config = embedded("page-config");
const storedDelivery = embedded("delivery-data");
const labels = config.statusLabels;

const statusBadge = document.getElementById("task-status");
const narration = document.getElementById("narration");
const steps = document.getElementById("steps");
const stepsEmpty = document.getElementById("steps-empty");
const deliveryBox = document.getElementById("delivery");
const question = document.getElementById("question");
const questionText = document.getElementById("question-text");
const choices = document.getElementById("question-choices");
const form = document.getElementById("answer-form");
const input = document.getElementById("answer-input");
const answerError = document.getElementById("answer-error");
const debugToggle = document.getElementById("debug-toggle");
const messageBox = document.getElementById("message");
const messageForm = document.getElementById("message-form");
const messageInput = document.getElementById("message-input");
const messageError = document.getElementById("message-error");
const reopenBox = document.getElementById("reopen");
const reopenForm = document.getElementById("reopen-form");
const reopenFeedback = document.getElementById("reopen-feedback");
const reopenError = document.getElementById("reopen-error");

let deliveredRun = config.delivered ? config.deliveryRunId : null;
// The viewer's rating of each delivery version they rated (the stored one comes embedded).
const ratings = {};
if (storedDelivery && config.rating) {
  ratings[storedDelivery.version] = config.rating;
}
let shownVersion = null;

const activity = activityStrip({ config, element: document.getElementById("activity"), steps });

function setStatus(status) {
  statusBadge.textContent = labels[status] || status;
  statusBadge.className = `status status--${token(status)}`;
  statusBadge.setAttribute("data-status", status);
  // Messages reach a harness at work: the box is there only while the task is in progress.
  messageBox.hidden = status !== "in_progress";
  if (status !== "completed" && status !== "no_changes") {
    reopenBox.hidden = true;
  }
  activity.setStatus(status);
}

function addLine(step) {
  if (typeof step.seq === "number" && steps.querySelector(`li[data-seq="${step.seq}"]`)) {
    return; // already on the page
  }
  steps.appendChild(renderStep(step));
  stepsEmpty.hidden = true;
}

function note(text, kind) {
  const row = el("li", `step step--note step--${kind}`);
  row.appendChild(el("span", "step__message", text));
  steps.appendChild(row);
  stepsEmpty.hidden = true;
}

// After the box the keyboard was in closes (an answer sent, a reopen confirmed), the
// focus goes to the narration, where the result is told, not back to the page's top.
function keepFocus() {
  const active = document.activeElement;
  if (!active || active === document.body || active.closest("[hidden]")) {
    document.getElementById("narration-title").focus();
  }
}

function showNarration() {
  deliveredRun = null;
  deliveryBox.hidden = true;
  narration.hidden = false;
}

// What the delivery card's actions do on this page (the card itself only renders).
const cardContext = {
  post: postJSON,
  done(action, data, body) {
    if (action.kind === "reopen") {
      setStatus(data.status);
      showNarration();
      note("Reopened: the task is ready for a harness again.", "system");
      return "Reopened.";
    }
    if (action.kind === "feedback") {
      ratings[shownVersion] = body.rating;
      return body.rating === "up" ? "Thanks: recorded as good." : "Thanks: recorded as not good.";
    }
    return "Done.";
  },
  askReopen(action, button) {
    reopenOpener = button || null;
    reopenBox.setAttribute("data-url", action.url);
    reopenError.hidden = true;
    reopenBox.hidden = false;
    reopenBox.scrollIntoView({ block: "nearest" });
    reopenFeedback.focus();
  },
  // A blocked result's question is in the question box: the card does not repeat it.
  questionElsewhere(block) {
    if (question.hidden) {
      return false;
    }
    const id = question.getAttribute("data-interrupt-id");
    return (block.interrupt_id && id === block.interrupt_id) || questionText.textContent === block.question;
  },
  focusAnswer() {
    if (!question.hidden) {
      question.scrollIntoView({ block: "nearest" });
      input.focus();
    }
  },
};

function showDelivery(payload) {
  deliveredRun = payload.run_id || null;
  shownVersion = payload.version || null;
  const card = render(payload.blocks, { ...cardContext, rating: ratings[shownVersion] || null });
  card.setAttribute("data-version", String(payload.version || ""));
  card.setAttribute("data-status", String(payload.status || ""));
  deliveryBox.replaceChildren(card);
  deliveryBox.hidden = false;
  narration.hidden = true;
}

function showQuestion(open) {
  question.setAttribute("data-interrupt-id", open.interrupt_id || "");
  questionText.textContent = open.question;
  choices.replaceChildren(
    ...(open.choices || []).map((choice) => {
      const button = el("button", "button choice", choice);
      button.type = "button";
      button.setAttribute("data-choice", choice);
      return button;
    })
  );
  // Choices bind the answer unless the harness allowed free text: then only the buttons.
  form.hidden = (open.choices || []).length > 0 && !open.allow_free_text;
  answerError.hidden = true;
  question.hidden = false;
}

function hideQuestion() {
  question.hidden = true;
  question.setAttribute("data-interrupt-id", "");
}

async function sendAnswer(text) {
  if (!text.trim()) {
    return;
  }
  const buttons = question.querySelectorAll("button");
  buttons.forEach((b) => {
    b.disabled = true;
  });
  try {
    const answer = await postJSON(config.urls.answer, { answer: text });
    if (answer.ok) {
      hideQuestion();
      input.value = "";
      setStatus(answer.data.status);
      if (!deliveryBox.hidden && deliveryBox.querySelector('.delivery-card[data-status="blocked"]')) {
        showNarration(); // the blocked card asked this question; the task moves on
      }
      note(`You answered: ${text}`, "answer");
      keepFocus();
    } else {
      answerError.textContent = problemText(answer, "The answer was not accepted.");
      answerError.hidden = false;
    }
  } catch {
    answerError.textContent = "Could not reach the server; try again.";
    answerError.hidden = false;
  } finally {
    buttons.forEach((b) => {
      b.disabled = false;
    });
  }
}

async function send(url, body, errorBox, fallback) {
  errorBox.hidden = true;
  try {
    const answer = await postJSON(url, body);
    if (!answer.ok) {
      errorBox.textContent = problemText(answer, fallback);
      errorBox.hidden = false;
    }
    return answer;
  } catch {
    errorBox.textContent = "Could not reach the server; try again.";
    errorBox.hidden = false;
    return null;
  }
}

messageForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const text = messageInput.value;
  if (!text.trim()) {
    return;
  }
  const button = messageForm.querySelector("button");
  button.disabled = true;
  const answer = await send(config.urls.messages, { text }, messageError, "The message was not sent.");
  button.disabled = false;
  if (answer && answer.ok) {
    messageInput.value = "";
    note(`You told the harness: ${text}`, "message");
  }
});

reopenForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const feedback = reopenFeedback.value.trim();
  const buttons = reopenForm.querySelectorAll("button");
  buttons.forEach((b) => {
    b.disabled = true;
  });
  const url = reopenBox.getAttribute("data-url") || config.urls.reopen;
  const body = feedback ? { feedback } : {};
  const answer = await send(url, body, reopenError, "The task was not reopened.");
  buttons.forEach((b) => {
    b.disabled = false;
  });
  if (answer && answer.ok) {
    reopenBox.hidden = true;
    reopenFeedback.value = "";
    setStatus(answer.data.status);
    showNarration();
    note(feedback ? `Reopened with your feedback: ${feedback}` : "Reopened: the task is ready for a harness again.", "system");
    keepFocus();
  }
});

let reopenOpener = null;

function closeReopen() {
  reopenBox.hidden = true;
  if (reopenOpener && reopenOpener.isConnected) {
    reopenOpener.focus(); // back where the keyboard was
  }
}

document.getElementById("reopen-cancel").addEventListener("click", closeReopen);
reopenBox.addEventListener("keydown", (event) => {
  if (event.key === "Escape") {
    event.preventDefault();
    closeReopen();
  }
});

// Ctrl+Enter (⌘+Enter on a Mac) sends the form a text box belongs to; Enter alone is a
// new line, as in any multi-line box.
const mac = /Mac|iPhone|iPad/.test(navigator.platform || navigator.userAgent || "");
document.querySelectorAll(".send-key").forEach((key) => {
  key.textContent = mac ? "⌘" : "Ctrl";
});
[input, messageInput, reopenFeedback].forEach((box) => {
  box.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && !event.isComposing) {
      event.preventDefault();
      box.form.requestSubmit();
    }
  });
});

form.addEventListener("submit", (event) => {
  event.preventDefault();
  sendAnswer(input.value);
});
choices.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-choice]");
  if (button) {
    sendAnswer(button.getAttribute("data-choice"));
  }
});

// Debug mode shows each step's phase and internal label; remembered per browser.
function setDebug(on) {
  document.body.classList.toggle("show-debug", on);
  debugToggle.checked = on;
  try {
    window.localStorage.setItem("ether.debug", on ? "1" : "0");
  } catch {
    // private mode: not remembered
  }
}
debugToggle.addEventListener("change", () => setDebug(debugToggle.checked));
try {
  setDebug(window.localStorage.getItem("ether.debug") === "1");
} catch {
  setDebug(false);
}

function onFrame(frame) {
  if (frame.task_id !== config.taskId) {
    return; // the org's activity topic carries every task
  }
  activity.onFrame(frame);
  switch (frame.type) {
    case "os.harness.step":
      if (deliveredRun && frame.run_id !== deliveredRun) {
        showNarration(); // a new run started after the delivery
      }
      addLine(frame);
      break;
    case "task.interrupted":
      showQuestion(frame);
      break;
    case "task.delivered":
    case "task.blocked":
    case "task.no_changes":
      showDelivery(frame);
      if (frame.type !== "task.blocked") {
        hideQuestion();
      }
      break;
    case "activity.list_updated":
      setStatus(frame.status);
      if (frame.status !== "paused") {
        hideQuestion(); // answered here, in another tab, or withdrawn
      }
      break;
    case "task.timeline":
      if (frame.kind === "answer" && frame.actor && frame.actor.type === "user") {
        hideQuestion();
      }
      break;
    default:
      break;
  }
}

if (config.delivered && storedDelivery) {
  showDelivery(storedDelivery);
}

connect({
  positions: config.positions,
  ticketUrl: config.ticketUrl,
  socketPath: config.socketPath,
  transport: config.transport,
  onFrame,
  onState: showState(document.getElementById("live-state")),
});
