"""The pages' transport in a real browser: when WebSockets fail the task page and the
grid fall back to server-sent events and still get every live frame; with
``ETHER_REALTIME_PREFER_WEBSOCKET`` off they use SSE from the start and never open a
socket (docs/realtime.md, "The pages' transport")."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.chromium import launched
from tests.browser.harness import RemoteHarness, shoot
from tests.browser.test_admin_preview import CHROMIUM, PASSWORD
from tests.servers import Server, daphne

pytestmark = [
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="Chromium is not installed (apt-get install chromium)"
    ),
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def member(world: Any) -> Any:
    world.user.set_password(PASSWORD)
    world.user.save()
    return world.user


@pytest.fixture
def chromium(member: Any, task: Any) -> Iterator[Browser]:
    """Started after the test's data: Playwright's loop forbids the ORM in this thread."""
    with launched() as browser:
        yield browser


class Traffic:
    """What a page asked the network for: its SSE streams, tickets, sockets, and errors."""

    def __init__(self, page: Page) -> None:
        self.requests: list[str] = []
        self.sockets: list[str] = []
        self.errors: list[str] = []
        page.on("request", lambda request: self.requests.append(request.url))
        page.on("websocket", lambda socket: self.sockets.append(socket.url))
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on(
            "console",
            lambda message: self.errors.append(message.text) if message.type == "error" else None,
        )

    def streams(self) -> list[str]:
        return [url for url in self.requests if "/events?" in url]

    def tickets(self) -> list[str]:
        return [url for url in self.requests if url.endswith("/api/realtime/tickets")]


def open_signed_in(page: Page, server: Server, path: str) -> None:
    page.goto(f"{server.http}/login/?next={path}")
    page.fill("#id_username", "alice")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"**{path}")


def expect_live_over_sse(page: Page) -> None:
    state = page.locator("#live-state")
    expect(state).to_have_attribute("data-state", "live", timeout=20000)
    expect(state).to_have_attribute("title", "Live over server-sent events")


def create_task(server: Server, world: Any, task: Any, title: str) -> dict[str, Any]:
    body = {
        "title": title,
        "prompt": "p",
        "definition_of_done": ["d"],
        "project": task.project.slug,
        "repo": task.repo.full_name,
    }
    status, created = server.call("POST", "/api/tasks", world.token, body)
    assert status == 201, created
    return created


def test_the_pages_fall_back_to_sse_when_websockets_fail(
    tmp_path: Path, chromium: Browser, world: Any, member: Any, task: Any
) -> None:
    with daphne(tmp_path) as server:
        harness = RemoteHarness(server, world, task.public_id)
        page = chromium.new_page(viewport={"width": 1280, "height": 900})
        traffic = Traffic(page)
        refused: list[str] = []

        def refuse(socket: Any) -> None:
            # As a proxy that cannot carry WebSockets: the socket ends before the hub answers.
            refused.append(socket.url)
            socket.close()

        page.route_web_socket("**/api/realtime*", refuse)
        open_signed_in(page, server, f"/tasks/{task.public_id}")
        expect_live_over_sse(page)
        assert len(refused) >= 2  # it tried the socket first, twice

        harness.claim()
        harness.step("Reading the code over SSE…")
        harness.step("Still streaming")
        messages = page.locator("#steps li.step .step__message")
        expect(messages).to_have_text(["Reading the code over SSE…", "Still streaming"])
        # The status follows the org's activity stream, the second SSE stream of the page.
        expect(page.locator("#task-status")).to_have_text("Working")
        streams = traffic.streams()
        assert any(f"/api/tasks/{task.public_id}/events?after=" in url for url in streams)
        assert any("/api/activity/events?after=" in url for url in streams)
        harness.submit(task.repo.url)
        expect(page.locator("#delivery .delivery-card")).to_be_visible()
        shoot(page, "transport-sse-fallback-task")

        page.goto(f"{server.http}/tasks/")
        expect_live_over_sse(page)
        created = create_task(server, world, task, "Made while the grid listens over SSE")
        row = page.locator(f"tr[data-task-id='{created['id']}']")
        expect(row).to_contain_text("Made while the grid listens over SSE")
        assert traffic.errors == []


def test_with_prefer_websocket_off_the_pages_use_sse_from_the_start(
    tmp_path: Path, chromium: Browser, world: Any, member: Any, task: Any
) -> None:
    with daphne(tmp_path, ETHER_REALTIME_PREFER_WEBSOCKET="0") as server:
        status, config = server.call("GET", "/api/config", world.token)
        assert status == 200 and config["realtime"]["prefer_websocket"] is False
        harness = RemoteHarness(server, world, task.public_id)
        page = chromium.new_page(viewport={"width": 1280, "height": 900})
        traffic = Traffic(page)
        open_signed_in(page, server, f"/tasks/{task.public_id}")
        expect_live_over_sse(page)
        harness.claim()
        harness.step("Straight to SSE")
        expect(page.locator("#steps li.step .step__message")).to_have_text(["Straight to SSE"])
        expect(page.locator("#task-status")).to_have_text("Working")

        page.goto(f"{server.http}/tasks/")
        expect_live_over_sse(page)
        created = create_task(server, world, task, "Listed over SSE only")
        expect(page.locator(f"tr[data-task-id='{created['id']}']")).to_be_visible()
        assert traffic.sockets == []  # no WebSocket was ever opened
        assert traffic.tickets() == []  # nor a ticket bought for one
        assert traffic.errors == []
