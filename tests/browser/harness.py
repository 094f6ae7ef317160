"""What the browser tests share: a daphne server and a signed-in Chromium (fixtures), a
harness that writes over HTTP (RemoteHarness), and the page helpers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.chromium import launched
from tests.browser.test_admin_preview import PASSWORD
from tests.servers import Server, served

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "var" / "artifacts" / "pages"


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
    with launched() as browser:
        yield browser


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
