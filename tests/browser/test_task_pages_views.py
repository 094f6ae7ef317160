"""The task pages in a real browser against a real daphne: narration arrives live, the
delivery card replaces it without a reload and survives one, a question is answered
from the page, the socket resumes without a gap, the grid updates live and the replay
page plays the run back.

Daphne runs as a subprocess on this test's database (``tests/servers.py``). With the
in-memory channel layer only that process can publish to its sockets, so every harness
write goes to it over HTTP, as a real harness would. The browser is Debian's Chromium
(``/usr/bin/chromium``); Playwright's own browser downloads are never used. Screenshots
of every page are kept in ``var/artifacts/pages/``.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser import harness
from tests.browser.harness import RemoteHarness, expect_live, shoot, sign_in
from tests.browser.test_admin_preview import CHROMIUM

# The shared fixtures, bound here so that pytest finds them for this module's tests.
browser = harness.browser
member = harness.member
server = harness.server

pytestmark = [
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="Chromium is not installed (apt-get install chromium)"
    ),
    pytest.mark.django_db(transaction=True),
]


def test_the_grid_updates_rows_live(server, browser, world, member, task):
    first = task
    watched = sign_in(browser, server, "/tasks/")
    page = watched.page
    expect_live(page)
    row = page.locator(f"tr[data-task-id='{first.public_id}']")
    expect(row).to_contain_text("Ready")

    RemoteHarness(server, world, first.public_id).claim()
    expect(row).to_contain_text("Working")

    status, created = server.call(
        "POST",
        "/api/tasks",
        world.token,
        {
            "title": "Second task, made while watching",
            "prompt": "p",
            "definition_of_done": ["d"],
            "project": first.project.slug,
            "repo": first.repo.full_name,
        },
    )
    assert status == 201, created
    rows = page.locator("#task-grid tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("Second task, made while watching")
    rows.nth(0).locator("a").click()
    page.wait_for_url(f"**/tasks/{created['id']}")
    page.go_back()
    expect_live(page)
    shoot(page, "grid")
    page.set_viewport_size({"width": 390, "height": 844})
    shoot(page, "grid-phone")
    assert watched.errors == []


def test_the_replay_page_plays_the_run_and_shows_the_delivery(server, browser, world, member, task):
    harness = RemoteHarness(server, world, task.public_id)
    harness.claim()
    for message in ["Cloning", "Reading", "Editing", "Testing"]:
        harness.step(message)
    harness.submit(task.repo.url)

    watched = sign_in(browser, server, f"/tasks/{task.public_id}/replay")
    page = watched.page
    expect(page.locator("#replay-delivery .outcome__headline")).to_have_text(
        "Pull request #7 is ready for review"
    )
    expect(page.locator("#position")).to_have_text(re.compile(r"^(\d+) / \1 · \+\d\d:\d\d$"))
    total = int(page.locator("#position").inner_text().split(" / ")[0])
    assert total >= 6  # claim, four steps, result, delivery
    # The page opens on the whole log; Restart plays it from the start.
    expect(page.locator("#play")).to_have_text("Restart")
    page.select_option("#speed", "16")
    page.click("#play")
    expect(page.locator("#play")).to_have_text("Pause")
    expect(page.locator("#play")).to_have_text("Restart", timeout=20000)
    stage = page.locator("#stage .step__message")
    played = stage.all_inner_texts()
    assert [m for m in played if m in {"Cloning", "Reading", "Editing", "Testing"}] == [
        "Cloning",
        "Reading",
        "Editing",
        "Testing",
    ]
    assert any("Delivery v1 (delivered)" in m for m in played)
    expect(page.locator("#position")).to_contain_text(f"{total} / {total}")
    shoot(page, "replay")

    # The scrubber jumps anywhere; the stage holds exactly the events up to it.
    page.locator("#scrubber").fill("2")
    expect(page.locator("#stage > li[data-seq]")).to_have_count(2)
    expect(page.locator("#position")).to_contain_text(f"2 / {total}")

    assert watched.errors == []


def test_the_compaction_page_shows_what_was_folded(server, browser, world, member, task):
    harness = RemoteHarness(server, world, task.public_id)
    for n in range(4):
        if n:
            status, _ = server.call("POST", f"/api/tasks/{task.public_id}/reopen", world.token, {})
            assert status == 200
        harness.claim()
        harness.step(f"Attempt {n + 1}")
        note = f"# Attempt {n + 1}\n\n## Decisions\n\n- decided to try idea {n + 1}\n\n"
        harness.post(
            "result",
            {
                "run_id": harness.run_id,
                "status": "no_changes",
                "agent_status": "Nothing to change",
                "no_changes_reason": "Already fixed upstream.",
                "working_summary": note + "Notes. " * 90,
            },
        )
    watched = sign_in(browser, server, f"/tasks/{task.public_id}/compaction")
    page = watched.page
    expect(page.locator("#working-docs tbody tr")).to_have_count(4)
    expect(page.locator("#working-docs")).to_contain_text(f"working/{harness.run_id}.md")
    expect(page.locator("#working-docs")).to_contain_text("folded")
    expect(page.locator("#memory .markdown")).to_contain_text("decided to try idea 1")
    expect(page.locator("#compactions > li").first).to_contain_text("B →")
    shoot(page, "compaction")
    assert watched.errors == []


def test_a_message_from_the_page_and_a_reopen_with_feedback(server, browser, world, member, task):
    harness = RemoteHarness(server, world, task.public_id)
    watched = sign_in(browser, server, f"/tasks/{task.public_id}")
    page = watched.page
    expect_live(page)
    expect(page.locator("#message")).to_be_hidden()  # ready: nobody to tell yet

    harness.claim()
    harness.step("Working on it…")
    expect(page.locator("#message")).to_be_visible()
    page.fill("#message-input", "Please keep the change small.")
    page.click("#message-form button[type=submit]")
    expect(page.locator("#steps")).to_contain_text(
        "You told the harness: Please keep the change small."
    )
    expect(page.locator("#message-input")).to_have_value("")
    messages = harness.heartbeat()["messages"]
    assert [(m["text"], m["sent_by"]) for m in messages] == [
        ("Please keep the change small.", "alice")
    ]
    shoot(page, "task-message")

    harness.submit(task.repo.url)
    card = page.locator("#delivery .delivery-card")
    expect(card).to_be_visible()
    expect(page.locator("#message")).to_be_hidden()

    # Reopen asks first; "Keep it closed" changes nothing.
    card.locator("button[data-action=reopen]").click()
    expect(page.locator("#reopen")).to_be_visible()
    page.click("#reopen-cancel")
    expect(page.locator("#reopen")).to_be_hidden()
    expect(page.locator("#task-status")).to_have_text("Delivered")

    card.locator("button[data-action=reopen]").click()
    page.fill("#reopen-feedback", "Also handle HEAD requests.")
    shoot(page, "task-reopen-feedback")
    page.click("#reopen-confirm")
    expect(page.locator("#reopen")).to_be_hidden()
    expect(page.locator("#task-status")).to_have_text("Ready")
    expect(page.locator("#steps")).to_contain_text(
        "Reopened with your feedback: Also handle HEAD requests."
    )
    bundle = harness.post("claim", {"app_id": world.app.app_id})["bundle"]
    assert [(f["text"], f["given_by"]) for f in bundle["feedback"]] == [
        ("Also handle HEAD requests.", "alice")
    ]
    assert watched.errors == []
