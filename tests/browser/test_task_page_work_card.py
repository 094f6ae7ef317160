"""Issue 19 on the task and replay pages, in a real browser against a real daphne: the
page shows the work going on (active step, elapsed, app and run, lease left), answers go
with Ctrl+Enter, the delivery card leads with the outcome and the PR and keeps the
viewer's rating across a reload, reopening asks first and takes feedback, a blocked
result shows its question once, and the replay's delivery panel follows the scrubber.
Every action is also taken from the keyboard, and nothing scrolls sideways at 390 px.

No assertion depends on timing: the tests wait for states (Playwright's ``expect``)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tasks.models import Event, Interrupt, Task, TaskMessage
from tests.browser import work_page
from tests.browser.harness import (
    RemoteHarness,
    expect_live,
    shoot,
    sign_in,
)
from tests.browser.test_admin_preview import CHROMIUM
from tests.browser.work_page import DOD, PHONE, no_sideways_scroll, stored

# The shared fixtures, bound here so that pytest finds them for this module's tests.
browser = work_page.browser
lease_seconds = work_page.lease_seconds
member = work_page.member
server = work_page.server
task = work_page.task

pytestmark = [
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="Chromium is not installed (apt-get install chromium)"
    ),
    pytest.mark.django_db(transaction=True),
]


# --- the task page -----------------------------------------------------------------------


def test_the_page_shows_the_work_going_on_and_ctrl_enter_answers(
    server, browser, world, member, task
):
    harness = RemoteHarness(server, world, task.public_id)
    watched = sign_in(browser, server, f"/tasks/{task.public_id}")
    page = watched.page
    expect_live(page)
    # "Live" is the connection badge only (the tab is "Task").
    expect(page.get_by_text("Live", exact=True)).to_have_count(1)
    strip = page.locator("#activity")
    expect(strip).to_be_hidden()  # ready: no run yet

    run_id = harness.claim()
    expect(strip).to_be_visible()
    expect(page.locator("#activity-app")).to_have_text(world.app.app_id)
    expect(page.locator("#activity-run")).to_have_text(run_id)
    expect(page.locator("#activity-label")).to_have_text("Working")
    expect(page.locator("#activity-lease")).to_have_text(re.compile(r"^(10:00|09:\d\d) left$"))
    expect(page.locator("#activity-elapsed")).to_have_text(re.compile(r"^\d\d:\d\d$"))
    harness.step("Reading the code…")
    expect(page.locator("#activity-step")).to_have_text("Reading the code…")
    harness.step("Running the tests…")
    expect(page.locator("#activity-step")).to_have_text("Running the tests…")
    shoot(page, "task-activity")

    # A reload renders the same strip from the server's state.
    page.reload()
    expect_live(page)
    expect(page.locator("#activity-step")).to_have_text("Running the tests…")
    expect(page.locator("#activity-run")).to_have_text(run_id)

    # Ctrl+Enter sends a message to the harness at work, too.
    page.locator("#message-input").focus()
    page.keyboard.type("Keep it small.")
    page.keyboard.press("Control+Enter")
    expect(page.locator("#steps")).to_contain_text("You told the harness: Keep it small.")
    told = stored(
        lambda: list(TaskMessage.objects.filter(task_id=task.pk).values_list("kind", "text"))
    )
    assert told == [("message", "Keep it small.")]

    harness.interrupt("Which port should /healthz listen on?", [], allow_free_text=True)
    expect(page.locator("#question")).to_be_visible()
    expect(page.locator("#activity-label")).to_have_text("Waiting for your answer")
    expect(strip).to_have_attribute("data-status", "paused")

    # Ctrl+Enter sends the answer; Enter alone is a new line.
    box = page.locator("#answer-input")
    box.focus()
    page.keyboard.type("8000")
    page.keyboard.press("Enter")
    page.keyboard.type("or 8001")
    expect(box).to_have_value("8000\nor 8001")
    page.keyboard.press("Control+Enter")
    expect(page.locator("#question")).to_be_hidden()
    expect(page.locator("#activity-label")).to_have_text("Working")
    answer = stored(lambda: Interrupt.objects.get(task_id=task.pk).answer)
    assert answer == "8000\nor 8001"

    page.set_viewport_size(PHONE)
    no_sideways_scroll(page)
    shoot(page, "task-activity-phone")
    page.set_viewport_size({"width": 1280, "height": 900})

    harness.submit(task.repo.url)
    expect(page.locator("#delivery .delivery-card")).to_be_visible()
    expect(strip).to_be_hidden()  # the run ended with its result
    assert watched.errors == []


@pytest.mark.parametrize("lease_seconds", [4])
def test_a_lease_that_runs_out_ends_the_strip(server, browser, world, member, task):
    """Nobody heartbeats: when the countdown runs out the page reads the task, the server
    records the expiry, and the strip goes (the lease_expired frame says so too)."""
    harness = RemoteHarness(server, world, task.public_id)
    watched = sign_in(browser, server, f"/tasks/{task.public_id}")
    page = watched.page
    expect_live(page)
    harness.claim()  # once the page is live, so the lease cannot run out before it
    expect(page.locator("#activity")).to_be_visible()
    expect(page.locator("#activity-lease")).to_have_class(re.compile(r"\bis-low\b"))
    expect(page.locator("#activity")).to_be_hidden(timeout=15000)
    expect(page.locator("#task-status")).to_have_text("Ready")
    kinds = stored(
        lambda: list(
            Event.objects.filter(task_id=task.pk, payload__kind="lease_expired").values_list(
                "payload__kind", flat=True
            )
        )
    )
    assert kinds == ["lease_expired"]
    assert watched.errors == []


def test_the_card_leads_with_the_pr_remembers_the_rating_and_reopens_by_keyboard(
    server, browser, world, member, task
):
    harness = RemoteHarness(server, world, task.public_id)
    harness.claim()
    harness.step("Adding the route…")
    harness.submit(task.repo.url)
    watched = sign_in(browser, server, f"/tasks/{task.public_id}")
    page = watched.page
    expect_live(page)
    card = page.locator("#delivery .delivery-card")
    open_pr = card.locator("[data-action=open_pr]")
    expect(open_pr).to_have_text("Open pull request #7")
    expect(open_pr).to_be_in_viewport()
    # Truthful at a glance: scope checked by URL and branch, GitHub not checked.
    expect(card.locator("[data-fact=pr_check]")).to_have_text("Not verified on GitHub")
    expect(card.locator(".outcome__not-checked")).to_be_visible()
    # The definition of done once in the card (the pill); the mention check and its
    # items are folded, as is the timeline.
    checked = card.locator("details[data-more=checked]")
    expect(checked).not_to_have_attribute("open", "")
    expect(checked.locator("[data-block=checklist]")).to_be_hidden()
    expect(card.locator("[data-block=timeline]")).to_be_hidden()
    for item in DOD:
        expect(card.get_by_text(item)).to_be_hidden()
    checked.locator("summary").click()
    expect(checked.locator(".checklist__item")).to_have_count(2)
    checked.locator("summary").click()

    # Rate it from the keyboard; the rating is stored and shown again after a reload.
    good = card.locator("button[data-rating=up]")
    good.focus()
    page.keyboard.press("Enter")
    expect(good).to_have_attribute("aria-pressed", "true")
    expect(card.locator("button[data-rating=down]")).to_have_attribute("aria-pressed", "false")
    ratings = stored(
        lambda: [
            (e.payload["rating"], e.payload["version"], e.payload["actor"]["username"])
            for e in Event.objects.filter(task_id=task.pk, payload__kind="feedback")
        ]
    )
    assert ratings == [("up", 1, "alice")]
    page.reload()
    expect_live(page)
    card = page.locator("#delivery .delivery-card")
    expect(card.locator("button[data-rating=up]")).to_have_attribute("aria-pressed", "true")
    expect(card.locator(".actions__result")).to_have_text("You rated this good.")
    shoot(page, "task-card-rated")

    # Reopen: Enter opens the confirmation with the feedback box focused, Escape keeps
    # it closed and gives the focus back, Ctrl+Enter reopens with the feedback.
    reopen = card.locator("button[data-action=reopen]")
    reopen.focus()
    page.keyboard.press("Enter")
    expect(page.locator("#reopen")).to_be_visible()
    expect(page.locator("#reopen-feedback")).to_be_focused()
    page.keyboard.press("Escape")
    expect(page.locator("#reopen")).to_be_hidden()
    expect(reopen).to_be_focused()
    assert stored(lambda: Task.objects.get(pk=task.pk).status) == "completed"
    page.keyboard.press("Enter")
    page.keyboard.type("Also answer HEAD requests.")
    page.keyboard.press("Control+Enter")
    expect(page.locator("#task-status")).to_have_text("Ready")
    expect(page.locator("#steps")).to_contain_text("Reopened with your feedback")
    expect(page.locator("#narration-title")).to_be_focused()  # not lost with the panel
    status, feedback = stored(
        lambda: (
            Task.objects.get(pk=task.pk).status,
            list(TaskMessage.objects.filter(task_id=task.pk).values_list("kind", "text")),
        )
    )
    assert status == "ready"
    assert feedback == [("feedback", "Also answer HEAD requests.")]
    assert watched.errors == []


def test_the_card_at_phone_width(server, browser, world, member, task):
    harness = RemoteHarness(server, world, task.public_id)
    harness.claim()
    harness.submit(task.repo.url)
    watched = sign_in(browser, server, f"/tasks/{task.public_id}")
    page = watched.page
    page.set_viewport_size(PHONE)
    expect_live(page)
    card = page.locator("#delivery .delivery-card")
    expect(card.locator("[data-action=open_pr]")).to_be_in_viewport()
    no_sideways_scroll(page)
    shoot(page, "task-card-phone")
    assert watched.errors == []


def test_a_blocked_result_shows_its_question_once(server, browser, world, member, task):
    harness = RemoteHarness(server, world, task.public_id)
    harness.claim()
    watched = sign_in(browser, server, f"/tasks/{task.public_id}")
    page = watched.page
    expect_live(page)
    asked = "Which port should /healthz listen on?"
    harness.post(
        "result",
        {
            "run_id": harness.run_id,
            "status": "blocked",
            "agent_status": "Need a port",
            "question": asked,
        },
    )
    card = page.locator("#delivery .delivery-card")
    expect(card).to_have_attribute("data-status", "blocked")
    expect(page.locator("#question-text")).to_have_text(asked)
    expect(card.locator(".outcome__headline")).to_have_text("Blocked: the harness needs an answer")
    expect(page.get_by_text(asked, exact=True)).to_have_count(1)
    shoot(page, "task-blocked")
    page.reload()
    expect_live(page)
    expect(page.locator("#delivery .delivery-card")).to_be_visible()
    expect(page.get_by_text(asked, exact=True)).to_have_count(1)
    page.set_viewport_size(PHONE)
    no_sideways_scroll(page)
    shoot(page, "task-blocked-phone")
    page.set_viewport_size({"width": 1280, "height": 900})

    # The card's "Answer the question" leads to the box; Ctrl+Enter sends.
    page.locator("button[data-action=answer]").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#answer-input")).to_be_focused()
    page.keyboard.type("8000")
    page.keyboard.press("Control+Enter")
    expect(page.locator("#question")).to_be_hidden()
    expect(page.locator("#narration")).to_be_visible()
    expect(page.locator("#steps")).to_contain_text("You answered: 8000")
    expect(page.locator("#narration-title")).to_be_focused()
    assert stored(lambda: Interrupt.objects.get(task_id=task.pk).answer) == "8000"
    assert watched.errors == []
