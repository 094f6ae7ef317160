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

import subprocess
import sys

import pytest
from playwright.sync_api import expect

from tasks.models import Interrupt
from tests.browser import harness
from tests.browser.harness import (
    ROOT,
    RemoteHarness,
    expect_live,
    mark_page,
    outside_the_browser_loop,
    shoot,
    sign_in,
    still_marked,
)
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


# --- scenarios ---------------------------------------------------------------------------


def test_narration_turns_into_the_delivery_card_in_place(server, browser, world, member, task):
    harness = RemoteHarness(server, world, task.public_id)
    watched = sign_in(browser, server, f"/tasks/{task.public_id}")
    page = watched.page
    expect_live(page)
    expect(page.locator("#steps-empty")).to_contain_text("Waiting for a harness")
    mark_page(page)
    shoot(page, "task-ready")

    harness.claim()
    harness.step("Reading the code…", internal_label="read_repo", phase="explore")
    harness.step("Making the changes…", internal_label="edit_files")
    hostile = '<img src=x onerror="window.__pwned=1">'
    harness.step(hostile, internal_label="<b>label</b>")
    steps = page.locator("#steps li.step")
    expect(steps).to_have_count(3)
    # Narration is text: markup a harness sends is shown, never run.
    expect(steps.nth(2).locator(".step__message")).to_have_text(hostile)
    assert page.evaluate("window.__pwned") is None
    assert steps.nth(2).locator("img").count() == 0
    expect(steps.nth(0)).to_contain_text("Reading the code…")
    expect(steps.nth(1)).to_contain_text("Making the changes…")
    expect(page.locator("#task-status")).to_have_text("Working")
    # Internal labels and phases only in debug mode.
    expect(steps.nth(0).locator(".step__debug")).to_be_hidden()
    page.check("#debug-toggle")
    expect(steps.nth(0).locator(".step__debug")).to_contain_text("read_repo")
    expect(steps.nth(0).locator(".step__debug")).to_contain_text("explore")
    shoot(page, "task-running")
    page.uncheck("#debug-toggle")

    harness.submit(task.repo.url)
    card = page.locator("#delivery .delivery-card")
    expect(card).to_be_visible()
    expect(page.locator("#narration")).to_be_hidden()
    expect(card.locator(".outcome__headline")).to_have_text("Pull request #7 is ready for review")
    expect(card.locator("[data-block=hero] a.hero__pr-link")).to_have_attribute(
        "href", f"{task.repo.url}/pull/7"
    )
    expect(card.locator("[data-block=summary] strong")).to_have_text("/healthz")
    expect(card.locator("[data-block=timeline] li")).to_have_count(3)
    expect(card.locator("[data-action=open_pr]")).to_be_visible()
    expect(page.locator("#task-status")).to_have_text("Delivered")
    block_types = card.locator("[data-block]").evaluate_all(
        "nodes => nodes.map(n => n.getAttribute('data-block'))"
    )
    # Outcome and actions lead; how it was checked and how it went are folded.
    assert block_types == [
        "outcome",
        "actions",
        "hero",
        "summary",
        "checks",
        "checklist",
        "timeline",
    ]
    # No token on this server: the card says the PR was not verified on GitHub.
    expect(card.locator("[data-fact=pr_check]")).to_have_text("Not verified on GitHub")
    expect(card.locator(".outcome__not-checked")).to_contain_text("not verified on GitHub")
    assert still_marked(page), "the page reloaded"
    shoot(page, "task-delivered")

    # Rating the delivery goes through the card's feedback action.
    card.locator("button[data-rating=up]").click()
    expect(card.locator(".actions__result")).to_have_text("Thanks: recorded as good.")

    page.reload()
    card = page.locator("#delivery .delivery-card")
    expect(card.locator(".outcome__headline")).to_have_text("Pull request #7 is ready for review")
    expect(page.locator("#narration")).to_be_hidden()
    reloaded = card.locator("[data-block]").evaluate_all(
        "nodes => nodes.map(n => n.getAttribute('data-block'))"
    )
    assert reloaded == block_types
    assert not still_marked(page)
    expect_live(page)
    shoot(page, "task-delivered-reloaded")
    page.set_viewport_size({"width": 390, "height": 844})
    shoot(page, "task-delivered-phone")
    assert watched.errors == []


def test_demo_harness_asks_the_page_answers_and_the_card_arrives(
    server, browser, world, member, task, tmp_path
):
    """``manage.py demo_harness --ask`` as a separate process: the whole loop a new user
    sees after ``make run``."""
    watched = sign_in(browser, server, f"/tasks/{task.public_id}")
    page = watched.page
    expect_live(page)
    mark_page(page)
    command = [sys.executable, "manage.py", "demo_harness", "--task", task.public_id]
    command += ["--base-url", server.http, "--key", world.key, "--app-id", world.app.app_id]
    command += ["--ask", "--pause", "0.2", "--wait", "60"]
    command += ["--secrets-file", str(tmp_path / "none.json")]
    harness = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        expect(page.locator("#question")).to_be_visible(timeout=30000)
        expect(page.locator("#steps li.step")).to_have_count(2)
        page.locator("#question-choices button", has_text="Only the build version").click()
        expect(page.locator("#question")).to_be_hidden()
        card = page.locator("#delivery .delivery-card")
        expect(card).to_be_visible(timeout=30000)
        expect(card.locator("[data-block=outcome] .status")).to_have_text("Delivered")
        output, _ = harness.communicate(timeout=60)
    finally:
        if harness.poll() is None:
            harness.kill()
            harness.wait()
    assert harness.returncode == 0, output
    assert "[answer] Only the build version" in output
    assert "Result submitted: task is now completed." in output
    assert still_marked(page), "the page reloaded"
    expect(card.locator("[data-block=timeline]")).to_contain_text(
        "Got your answer: Only the build version"
    )
    shoot(page, "task-demo-harness")
    assert watched.errors == []


def test_answering_the_question_from_the_page(server, browser, world, member, task):
    harness = RemoteHarness(server, world, task.public_id)
    harness.claim()
    watched = sign_in(browser, server, f"/tasks/{task.public_id}")
    page = watched.page
    expect_live(page)
    expect(page.locator("#question")).to_be_hidden()

    harness.step("Looking at the settings…")
    harness.interrupt("Return the git SHA too?", ["yes", "no"], allow_free_text=True)
    question = page.locator("#question")
    expect(question).to_be_visible()
    expect(page.locator("#question-text")).to_have_text("Return the git SHA too?")
    expect(page.locator("#question-choices button")).to_have_count(2)
    # Free text allowed: the answer box is there beside the choices.
    expect(page.locator("#answer-form")).to_be_visible()
    expect(page.locator("#task-status")).to_have_text("Needs your answer")
    shoot(page, "task-paused")

    page.fill("#answer-input", "Yes, and the build date")
    page.click("#answer-form button[type=submit]")
    expect(question).to_be_hidden()
    expect(page.locator("#steps")).to_contain_text("You answered: Yes, and the build date")
    expect(page.locator("#task-status")).to_have_text("Working")

    stored = outside_the_browser_loop(
        lambda: Interrupt.objects.values("answer", "answered_by__username").get(task=task)
    )
    assert stored == {"answer": "Yes, and the build date", "answered_by__username": "alice"}
    # And as the harness reads it back.
    answers = harness.heartbeat()["answers"]
    assert [(a["answer"], a["answered_by"]) for a in answers] == [
        ("Yes, and the build date", member.username)
    ]
    shoot(page, "task-answered")
    assert watched.errors == []


def test_choices_bind_the_answer_on_the_page(server, browser, world, member, task):
    harness = RemoteHarness(server, world, task.public_id)
    harness.claim()
    watched = sign_in(browser, server, f"/tasks/{task.public_id}")
    page = watched.page
    expect_live(page)
    harness.interrupt("Which database?", ["SQLite", "Postgres"])
    expect(page.locator("#question")).to_be_visible()
    # The choices are the answer: buttons only, no free-text box.
    expect(page.locator("#answer-form")).to_be_hidden()
    expect(page.locator("#question-choices button")).to_have_text(["SQLite", "Postgres"])
    shoot(page, "task-question-choices")
    page.reload()  # the server-rendered question hides the box too
    expect(page.locator("#answer-form")).to_be_hidden()
    page.locator("#question-choices button", has_text="Postgres").click()
    expect(page.locator("#question")).to_be_hidden()
    expect(page.locator("#steps")).to_contain_text("You answered: Postgres")
    stored = outside_the_browser_loop(lambda: Interrupt.objects.get(task=task).answer)
    assert stored == "Postgres"
    assert watched.errors == []


def test_a_dropped_socket_resumes_without_gap_or_duplicate(server, browser, world, member, task):
    harness = RemoteHarness(server, world, task.public_id)
    harness.claim()
    harness.step("Before the page")  # part of the server-rendered state
    watched = sign_in(browser, server, f"/tasks/{task.public_id}", network=True)
    page = watched.page
    expect_live(page)
    harness.step("One")
    expect(page.locator("#steps li.step")).to_have_count(2)

    watched.network.drop()
    expect(page.locator("#live-state")).not_to_have_attribute("data-state", "live")
    harness.step("Two, while offline")
    harness.step("Three, while offline")
    expect_live(page)  # a new ticket, subscribed again with since
    harness.step("Four")
    messages = page.locator("#steps li.step .step__message")
    expect(messages).to_have_text(
        ["Before the page", "One", "Two, while offline", "Three, while offline", "Four"]
    )
    seqs = page.locator("#steps li.step").evaluate_all(
        "nodes => nodes.map(n => Number(n.getAttribute('data-seq')))"
    )
    assert seqs == sorted(set(seqs))
    assert watched.errors == []
