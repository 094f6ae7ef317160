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
import subprocess
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tasks.models import Interrupt
from tests.browser.test_admin_preview import CHROMIUM, CHROMIUM_ARGS, PASSWORD
from tests.servers import Server, served

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "var" / "artifacts" / "pages"

pytestmark = [
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="Chromium is not installed (apt-get install chromium)"
    ),
    pytest.mark.django_db(transaction=True),
]


# --- the harness and the API, over HTTP to the daphne under test -----------------------


class RemoteHarness:
    """A harness app driving one task on the server under test."""

    def __init__(self, server: Server, world: Any, task_id: str) -> None:
        self.server, self.world, self.task_id = server, world, task_id
        self.run_id = ""

    def post(self, route: str, body: dict[str, Any]) -> Any:
        path = f"/api/harness/tasks/{self.task_id}/{route}"
        status, answer = self.server.call("POST", path, self.world.key, body)
        assert status in (200, 201), (route, status, answer)
        return answer

    def claim(self) -> str:
        self.run_id = self.post("claim", {"app_id": self.world.app.app_id})["run_id"]
        return self.run_id

    def step(self, message: str, **extra: Any) -> int:
        body = {"run_id": self.run_id, "phase": "coding_agent", "user_message": message, **extra}
        return self.post("steps", body)["seq"]

    def interrupt(self, question: str, choices: list[str], **extra: Any) -> Any:
        return self.post(
            "interrupt",
            {"run_id": self.run_id, "question": question, "choices": choices, **extra},
        )

    def heartbeat(self) -> Any:
        return self.post("heartbeat", {"run_id": self.run_id})

    def submit(self, repo_url: str, number: int = 7) -> Any:
        pr = {"number": number, "url": f"{repo_url}/pull/{number}", "branch": "ether/healthz"}
        return self.post(
            "result",
            {
                "run_id": self.run_id,
                "status": "submitted",
                "agent_status": f"Opened PR #{number}",
                "artifact": {"pr": pr},
                "working_summary": "## Done\n\nAdded **/healthz**; "
                "test_widget passes 100 times in a row.",
            },
        )


# --- fixtures ----------------------------------------------------------------------------


@pytest.fixture
def server(tmp_path: Path, transactional_db: Any) -> Iterator[Server]:
    # A small working-notes budget, so a few runs' notes are compacted. With
    # ETHER_TEST_WORKERS=2, two processes behind haproxy (tests.servers.served); after
    # the database fixture, so they stop before it is flushed.
    with served(tmp_path, ETHER_WORKING_BUDGET_BYTES="2048") as running:
        yield running


@pytest.fixture
def browser(server: Server, member: Any, task: Any) -> Iterator[Browser]:
    """Chromium, started after daphne and the test's data.

    Playwright's sync API keeps an asyncio loop in this thread: from here on Django
    refuses ORM calls ("async context") and ``async_to_sync`` refuses to publish, so the
    data is made first and later reads go through ``outside_the_browser_loop``.
    """
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def member(world: Any) -> Any:
    world.user.set_password(PASSWORD)
    world.user.save()
    return world.user


class Watched:
    """A page with its script errors collected: any uncaught error fails the test."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.errors: list[str] = []
        self.network: Network | None = None
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on(
            "console",
            lambda message: self.errors.append(message.text) if message.type == "error" else None,
        )


class Network:
    """The page's WebSockets, passed through Playwright to the server, so a test can cut
    one as a failing network would (the page sees its socket close)."""

    def __init__(self, page: Page) -> None:
        self.servers: list[Any] = []
        page.route_web_socket("**/api/realtime*", self.route)

    def route(self, socket: Any) -> None:
        self.servers.append(socket.connect_to_server())

    def drop(self) -> None:
        for server in self.servers:
            server.close()
        self.servers.clear()


def mark_page(page: Page) -> None:
    """A mark in the window: it is gone once the page has reloaded or navigated."""
    page.evaluate("() => { window.testMark = true; }")


def still_marked(page: Page) -> bool:
    return page.evaluate("() => window.testMark === true")


def sign_in(browser: Browser, server: Server, path: str, network: bool = False) -> Watched:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    watched = Watched(page)
    if network:
        watched.network = Network(page)
    page.goto(f"{server.http}/login/?next={path}")
    page.fill("#id_username", "alice")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"**{path}")
    return watched


def outside_the_browser_loop(read: Callable[[], Any]) -> Any:
    """Runs an ORM read in a thread of its own and closes its connection there.

    In this thread Playwright keeps an asyncio loop, and Django's connections live in a
    context-local: a query here would open a connection that nothing closes, and
    Postgres would refuse to drop the test database after the run."""

    def run() -> Any:
        from django.db import connections

        try:
            return read()
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run).result(timeout=30)


def shoot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True, animations="disabled")


def expect_live(page: Page) -> None:
    expect(page.locator("#live-state")).to_have_attribute("data-state", "live", timeout=15000)


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
