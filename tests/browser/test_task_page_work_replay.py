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
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser import work_page
from tests.browser.harness import (
    RemoteHarness,
    shoot,
    sign_in,
)
from tests.browser.test_admin_preview import CHROMIUM
from tests.browser.work_page import PHONE, no_sideways_scroll

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
