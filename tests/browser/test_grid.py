"""The grid in a real browser, driven from the keyboard where a person could: a new task
from the grid's form (the API's field errors shown, then created and listed live), search
and status filter kept while frames arrive, and the live "need your answer" count."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tasks.models import Task
from tests.browser.chromium import launched
from tests.browser.harness import RemoteHarness, outside_the_browser_loop, shoot
from tests.browser.test_admin_preview import CHROMIUM, PASSWORD
from tests.servers import Server, daphne

pytestmark = [
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="Chromium is not installed (apt-get install chromium)"
    ),
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    with daphne(tmp_path) as running:
        yield running


@pytest.fixture
def member(world: Any) -> Any:
    world.user.set_password(PASSWORD)
    world.user.save()
    return world.user


@pytest.fixture
def chromium(server: Server, member: Any, task: Any) -> Iterator[Browser]:
    with launched() as browser:
        yield browser


def signed_in(browser: Browser, server: Server, path: str) -> tuple[Page, list[str]]:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(f"{server.http}/login/?next={path}")
    page.fill("#id_username", "alice")
    page.fill("#id_password", PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"**{path}")
    expect(page.locator("#live-state")).to_have_attribute("data-state", "live", timeout=15000)
    return page, errors


def focused(page: Page) -> str:
    return page.evaluate("() => document.activeElement.id || document.activeElement.tagName")


def test_a_new_task_from_the_grid_by_keyboard(server, chromium, world, member, task):
    page, errors = signed_in(chromium, server, "/tasks/")
    # The first Tab shows the skip link; every focus is visibly outlined.
    page.keyboard.press("Tab")
    expect(page.locator(".skip-link")).to_be_focused()
    outline = page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("none", "")

    summary = page.locator("#new-task > summary")
    summary.focus()
    page.keyboard.press("Enter")
    expect(page.locator("#nt-title")).to_be_visible()
    # Sent empty: told at once under the fields, and focused on the first.
    page.locator("#new-task-form button[type=submit]").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#nt-title-error")).to_have_text("Required.")
    expect(page.locator("#nt-prompt-error")).to_have_text("Required.")
    expect(page.locator("#nt-title")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#nt-title")).to_be_focused()

    page.keyboard.type("Add a /healthz endpoint")
    page.keyboard.press("Tab")
    assert focused(page) == "nt-prompt"
    page.keyboard.type("Return 200 and the build version.")
    page.keyboard.press("Tab")
    page.keyboard.type("GET /healthz answers 200")
    page.keyboard.press("Enter")
    page.keyboard.type("A test covers it")
    page.keyboard.press("Tab")
    assert focused(page) == "nt-repo"
    page.keyboard.press("Tab")
    page.keyboard.type("ether/healthz *")
    page.keyboard.press("Tab")
    assert focused(page) == "nt-app"
    page.select_option("#nt-app", world.app.app_id)
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    # The API refuses the branch glob: its message under the field, nothing stored.
    expect(page.locator("#nt-branch-error")).to_have_text(
        "Must be a branch glob without spaces, like ether/*."
    )
    expect(page.locator("#nt-branch")).to_be_focused()
    expect(page.locator("#nt-title-error")).to_be_hidden()
    assert outside_the_browser_loop(lambda: Task.objects.count()) == 1
    shoot(page, "grid-new-task-errors")
    page.fill("#nt-branch", "ether/healthz-*")
    page.locator("#nt-branch").press("Enter")  # Enter in a field sends the form

    result = page.locator("#new-task-result a")
    expect(result).to_have_text("Add a /healthz endpoint")
    expect(page.locator("#nt-title-error")).to_be_hidden()
    expect(page.locator("#nt-title")).to_have_value("")
    row = page.locator("#task-grid tbody tr").first
    expect(row).to_contain_text("Add a /healthz endpoint")
    expect(row).to_contain_text("Ready")
    stored = outside_the_browser_loop(
        lambda: (
            Task.objects.select_related("assigned_app", "owner")
            .values(
                "title",
                "prompt",
                "definition_of_done",
                "branch_scope",
                "assigned_app__app_id",
                "owner__username",
            )
            .get(title="Add a /healthz endpoint")
        )
    )
    assert stored == {
        "title": "Add a /healthz endpoint",
        "prompt": "Return 200 and the build version.",
        "definition_of_done": ["GET /healthz answers 200", "A test covers it"],
        "branch_scope": "ether/healthz-*",
        "assigned_app__app_id": world.app.app_id,
        "owner__username": "alice",
    }
    href = result.get_attribute("href")
    page.reload()  # one row, not two: the page's own insert and the frame were one task
    expect(page.locator("#task-grid tbody tr")).to_have_count(2)
    shoot(page, "grid-new-task-created")
    page.locator(f"a[href='{href}']").first.click()
    page.wait_for_url(f"**{href}")
    # The one refused request is the browser's own log line about the 400; nothing else.
    assert [e for e in errors if "status of 400" not in e] == []
    assert len(errors) == 1


def test_search_filter_and_the_need_your_answer_count_follow_live_frames(
    server, chromium, world, member, task
):
    health = outside_the_browser_loop(lambda: world.task(title="Add a health check"))
    other = outside_the_browser_loop(lambda: world.task(title="Fix the login form"))
    page, errors = signed_in(chromium, server, "/tasks/?q=health")
    rows = page.locator("#task-grid tbody tr")
    expect(rows).to_have_count(1)
    expect(page.locator("#waiting-count")).to_have_text("0")
    time = rows.first.locator("time")
    expect(time).to_have_text("just now")
    assert time.get_attribute("title").endswith(" UTC")

    # A task that does not match the search changes: not listed, but it is counted.
    asker = RemoteHarness(server, world, other.public_id)
    asker.claim()
    asker.interrupt("Keep the old form?", ["yes", "no"])
    expect(page.locator("#waiting-count")).to_have_text("1")
    expect(page.locator("#waiting")).to_contain_text("1 needs your answer")
    expect(rows).to_have_count(1)
    # A matching one moves and keeps its place in the search.
    RemoteHarness(server, world, health.public_id).claim()
    expect(rows.first).to_contain_text("Working")

    # The count filters: the waiting tasks, live.
    page.locator("#waiting").focus()
    page.keyboard.press("Enter")
    page.wait_for_url("**/tasks/?status=paused")
    expect(page.locator("#live-state")).to_have_attribute("data-state", "live")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Fix the login form")
    shoot(page, "grid-waiting")
    status, _ = server.call(
        "POST", f"/api/tasks/{other.public_id}/answer", world.token, {"answer": "yes"}
    )
    assert status == 200
    expect(rows).to_have_count(0)
    expect(page.locator("#grid-empty")).to_be_visible()
    expect(page.locator("#waiting-count")).to_have_text("0")

    # Search and status from the keyboard: type, Enter.
    page.locator("#grid-q").focus()
    page.keyboard.type("login")
    page.keyboard.press("Enter")
    page.wait_for_url("**/tasks/?q=login&status=paused")
    page.select_option("#grid-status", "")
    page.locator("#grid-filter button[type=submit]").press("Enter")
    page.wait_for_url("**/tasks/?q=login&status=")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Working")
    assert errors == []
