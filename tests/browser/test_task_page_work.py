"""Issue 19 on the task and replay pages, in a real browser against a real daphne: the
page shows the work going on (active step, elapsed, app and run, lease left), answers go
with Ctrl+Enter, the delivery card leads with the outcome and the PR and keeps the
viewer's rating across a reload, reopening asks first and takes feedback, a blocked
result shows its question once, and the replay's delivery panel follows the scrubber.
Every action is also taken from the keyboard, and nothing scrolls sideways at 390 px.

No assertion depends on timing: the tests wait for states (Playwright's ``expect``)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tasks.models import Event, Interrupt, Task, TaskMessage
from tests.browser.test_admin_preview import CHROMIUM, CHROMIUM_ARGS, PASSWORD
from tests.browser.test_task_pages import (
    RemoteHarness,
    expect_live,
    outside_the_browser_loop,
    shoot,
    sign_in,
)
from tests.servers import Server, daphne

pytestmark = [
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="Chromium is not installed (apt-get install chromium)"
    ),
    pytest.mark.django_db(transaction=True),
]

DOD = ["GET /healthz answers 200", "Docs updated"]
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def task(world: Any) -> Any:
    return world.task(definition_of_done=DOD)


@pytest.fixture
def lease_seconds() -> int:
    # A ten-minute lease, so the countdown's first reading is known to the minute; a test
    # parametrizes ``lease_seconds`` for another.
    return 600


@pytest.fixture
def server(tmp_path: Path, lease_seconds: int) -> Iterator[Server]:
    with daphne(tmp_path, ETHER_LEASE_SECONDS=str(lease_seconds)) as running:
        yield running


@pytest.fixture
def member(world: Any) -> Any:
    world.user.set_password(PASSWORD)
    world.user.save()
    return world.user


@pytest.fixture
def browser(server: Server, member: Any, task: Any) -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            launched.close()


def no_sideways_scroll(page: Page) -> None:
    wide = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    # Which elements stick out, to say so in the failure.
    culprits = page.evaluate(
        """() => [...document.querySelectorAll('body *')]
            .filter(n => n.getBoundingClientRect().right > window.innerWidth + 0.5)
            .slice(0, 5)
            .map(n => n.tagName + '.' + n.className + '#' + n.id)"""
    )
    assert wide <= 0, f"the page scrolls {wide}px sideways: {culprits}"


def stored(read: Any) -> Any:
    return outside_the_browser_loop(read)


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


# --- the replay page ---------------------------------------------------------------------


def replay_state(page: Page) -> dict[str, Any]:
    return json.loads(page.locator("#replay-data").text_content() or "{}")


DELIVERY_EVENTS = {"task.delivered", "task.blocked", "task.no_changes"}


def expected_version(events: list[dict[str, Any]], position: int) -> int | None:
    """The delivery the panel should show after the first ``position`` events."""
    delivered = [e["version"] for e in events[:position] if e["type"] in DELIVERY_EVENTS]
    return delivered[-1] if delivered else None


def test_the_replay_follows_the_scrubber(server, browser, world, member, task):
    harness = RemoteHarness(server, world, task.public_id)
    harness.claim()
    harness.step("Looking around")
    harness.post(
        "result",
        {
            "run_id": harness.run_id,
            "status": "no_changes",
            "agent_status": "Nothing to do",
            "no_changes_reason": "Already there.",
        },
    )
    status, _ = server.call("POST", f"/api/tasks/{task.public_id}/reopen", world.token, {})
    assert status == 200
    harness.claim()
    harness.step("Cloning")
    harness.interrupt("Add a HEAD route too?", ["yes", "no"])
    status, _ = server.call(
        "POST", f"/api/tasks/{task.public_id}/answer", world.token, {"answer": "yes"}
    )
    assert status == 200
    harness.step("Editing")
    harness.step("Testing")
    harness.submit(task.repo.url)

    watched = sign_in(browser, server, f"/tasks/{task.public_id}/replay")
    page = watched.page
    events = replay_state(page)["events"]
    total = len(events)
    assert total >= 12
    # Opens on the whole log and the latest delivery.
    expect(page.locator("#position")).to_contain_text(f"{total} / {total}")
    expect(page.locator("#replay-delivery .delivery-card")).to_have_attribute("data-version", "2")
    expect(page.locator("#play")).to_have_text("Restart")
    # Run headings, and every time as +mm:ss from the start.
    expect(page.locator("#stage .run-heading__title")).to_have_text(
        [f"Run 1 · {world.app.app_id}", f"Run 2 · {world.app.app_id}"]
    )
    times = page.locator("#stage li[data-seq] time").all_inner_texts()
    assert times and all(re.fullmatch(r"\+\d\d:\d\d", t) for t in times), times
    # The question once, and who answered it.
    expect(page.locator("#stage").get_by_text("Add a HEAD route too?")).to_have_count(1)
    expect(page.locator("#stage")).to_contain_text("Answered (alice): yes")
    # The version picker in human words, no raw ISO.
    options = page.locator("#delivery-version option").all_inner_texts()
    assert all(not re.search(r"\d{4}-\d\d-\d\dT", o) for o in options), options
    assert any(re.search(r"v2 · delivered · \d+ \w{3} \d{4}, \d\d:\d\d UTC", o) for o in options)
    # Marks: one question, two deliveries.
    expect(page.locator(".scrub__mark--question")).to_have_count(1)
    expect(page.locator(".scrub__mark--delivery")).to_have_count(2)
    expect(page.locator("#scrub-axis .scrub__tick").first).to_have_text("+00:00")
    shoot(page, "replay-end")

    # At every position the panel shows the delivery as of that event.
    for position in range(total + 1):
        page.locator("#scrubber").fill(str(position))
        expect(page.locator("#position")).to_contain_text(f"{position} / {total}")
        version = expected_version(events, position)
        if version is None:
            expect(page.locator("#replay-delivery .delivery-card")).to_have_count(0)
            expect(page.locator("#replay-delivery-none")).to_be_visible()
            expect(page.locator("#delivery-version")).to_have_value("")
        else:
            expect(page.locator("#replay-delivery .delivery-card")).to_have_attribute(
                "data-version", str(version)
            )
            expect(page.locator("#delivery-version")).to_have_value(str(version))
        expect(page.locator("#stage li[data-seq]")).to_have_count(position)
        label = "Restart" if position == total else "Play"
        expect(page.locator("#play")).to_have_text(label)
        if position == 5:
            shoot(page, "replay-at-5")

    # The question's mark, from the keyboard: the stage ends on the question.
    mark = page.locator(".scrub__mark--question")
    mark.focus()
    page.keyboard.press("Enter")
    at = int(mark.get_attribute("data-position") or 0)
    expect(page.locator("#position")).to_contain_text(f"{at} / {total}")
    expect(page.locator("#stage li[data-seq]").last).to_contain_text("Asked: Add a HEAD route too?")
    expect(page.locator("#replay-delivery .delivery-card")).to_have_attribute("data-version", "1")

    # Picking a version jumps to where it was delivered.
    page.select_option("#delivery-version", "1")
    expect(page.locator("#stage li[data-seq]").last).to_contain_text("Delivery v1 (no changes)")
    expect(page.locator("#replay-delivery .delivery-card")).to_have_attribute("data-version", "1")

    # The scrubber from the keyboard: Home, a step right, End.
    page.locator("#scrubber").focus()
    page.keyboard.press("Home")
    expect(page.locator("#position")).to_contain_text(f"0 / {total}")
    expect(page.locator("#play")).to_have_text("Play")
    page.keyboard.press("ArrowRight")
    expect(page.locator("#position")).to_contain_text(f"1 / {total}")
    page.keyboard.press("End")
    expect(page.locator("#play")).to_have_text("Restart")
    expect(page.locator("#replay-delivery .delivery-card")).to_have_attribute("data-version", "2")

    page.set_viewport_size(PHONE)
    no_sideways_scroll(page)
    shoot(page, "replay-phone")
    assert watched.errors == []
