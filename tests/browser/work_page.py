"""Fixtures and helpers shared by the task-page work tests (test_task_page_work_*.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page

from tests.browser.chromium import launched
from tests.browser.harness import (
    outside_the_browser_loop,
)
from tests.browser.test_admin_preview import PASSWORD
from tests.servers import Server, daphne

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
    with launched() as browser:
        yield browser


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
