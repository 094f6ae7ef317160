/*
 * The task page: live narration, the open question with its answer box, and the
 * delivery card that replaces the narration in place when the run's result arrives.
 *
 * State on load comes from the server (steps and question as HTML, the delivery as JSON);
 * frames after the embedded positions come over the realtime hub. Applying a frame is
 * idempotent (steps by seq, questions by id, the card by run), because the frames just
 * after the positions may already be part of the page.
 */
(function () {
  "use strict";

  // Set once per page load: a test proves the card arrived without a reload by this.
  window.__loadedAt = window.__loadedAt || Date.now();

  var config = JSON.parse(document.getElementById("page-config").textContent);
  var storedDelivery = JSON.parse(document.getElementById("delivery-data").textContent);
  var labels = config.statusLabels;

  var statusBadge = document.getElementById("task-status");
  var narration = document.getElementById("narration");
  var steps = document.getElementById("steps");
  var stepsEmpty = document.getElementById("steps-empty");
  var deliveryBox = document.getElementById("delivery");
  var question = document.getElementById("question");
  var questionText = document.getElementById("question-text");
  var choices = document.getElementById("question-choices");
  var form = document.getElementById("answer-form");
  var input = document.getElementById("answer-input");
  var answerError = document.getElementById("answer-error");
  var debugToggle = document.getElementById("debug-toggle");

  var deliveredRun = config.delivered ? config.deliveryRunId : null;

  function setStatus(status) {
    statusBadge.textContent = labels[status] || status;
    statusBadge.className = "status status--" + status.replace(/[^a-z_]/g, "");
    statusBadge.setAttribute("data-status", status);
  }

  function addLine(step) {
    if (typeof step.seq === "number" && steps.querySelector('li[data-seq="' + step.seq + '"]')) {
      return; // already on the page
    }
    steps.appendChild(window.EtherBlocks.renderStep(step));
    stepsEmpty.hidden = true;
  }

  function note(text, kind) {
    var row = window.EtherBlocks.el("li", "step step--note step--" + kind);
    row.appendChild(window.EtherBlocks.el("span", "step__message", text));
    steps.appendChild(row);
    stepsEmpty.hidden = true;
  }

  function showNarration() {
    deliveredRun = null;
    deliveryBox.hidden = true;
    narration.hidden = false;
  }

  // What the delivery card's actions do on this page (the card itself only renders).
  var cardContext = {
    post: window.EtherRealtime.postJSON,
    done: function (action, data, body) {
      if (action.kind === "reopen") {
        setStatus(data.status);
        showNarration();
        note("Reopened: the task is ready for a harness again.", "system");
        return "Reopened.";
      }
      if (action.kind === "feedback") {
        return body.rating === "up" ? "Thanks: recorded as good." : "Thanks: recorded as not good.";
      }
      return "Done.";
    },
    focusAnswer: function () {
      if (!question.hidden) {
        question.scrollIntoView({ block: "nearest" });
        input.focus();
      }
    },
  };

  function showDelivery(payload) {
    deliveredRun = payload.run_id || null;
    var card = window.EtherBlocks.render(payload.blocks, cardContext);
    card.setAttribute("data-version", String(payload.version || ""));
    card.setAttribute("data-status", String(payload.status || ""));
    deliveryBox.textContent = "";
    deliveryBox.appendChild(card);
    deliveryBox.hidden = false;
    narration.hidden = true;
  }

  function showQuestion(open) {
    question.setAttribute("data-interrupt-id", open.interrupt_id || "");
    questionText.textContent = open.question;
    choices.textContent = "";
    (open.choices || []).forEach(function (choice) {
      var button = window.EtherBlocks.el("button", "button choice", choice);
      button.type = "button";
      button.setAttribute("data-choice", choice);
      choices.appendChild(button);
    });
    answerError.hidden = true;
    question.hidden = false;
  }

  function hideQuestion() {
    question.hidden = true;
    question.setAttribute("data-interrupt-id", "");
  }

  function sendAnswer(text) {
    if (!text.trim()) {
      return;
    }
    var buttons = question.querySelectorAll("button");
    buttons.forEach(function (b) {
      b.disabled = true;
    });
    window.EtherRealtime.postJSON(config.urls.answer, { answer: text })
      .then(function (answer) {
        if (answer.ok) {
          hideQuestion();
          input.value = "";
          setStatus(answer.data.status);
          note("You answered: " + text, "answer");
        } else {
          answerError.textContent = (answer.data && answer.data.detail) || "The answer was not accepted.";
          answerError.hidden = false;
        }
      })
      .catch(function () {
        answerError.textContent = "Could not reach the server; try again.";
        answerError.hidden = false;
      })
      .then(function () {
        buttons.forEach(function (b) {
          b.disabled = false;
        });
      });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    sendAnswer(input.value);
  });
  choices.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-choice]");
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
    } catch (error) {
      /* private mode: not remembered */
    }
  }
  debugToggle.addEventListener("change", function () {
    setDebug(debugToggle.checked);
  });
  try {
    setDebug(window.localStorage.getItem("ether.debug") === "1");
  } catch (error) {
    setDebug(false);
  }

  function onFrame(frame) {
    if (frame.task_id !== config.taskId) {
      return; // the org's activity topic carries every task
    }
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

  var badge = window.EtherRealtime.showState(document.getElementById("live-state"));
  window.__etherRealtime = window.EtherRealtime.connect({
    positions: config.positions,
    ticketUrl: config.ticketUrl,
    onFrame: onFrame,
    onState: badge,
  });
})();
