"""Helpers and fixtures shared by the result API tests (test_result_api_*.py)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import pytest

from tasks.models import (
    Event,
)
from tests.helpers import Harness

ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
INT_ID = re.compile(r"^int_[0-9a-f]{32}$")


def parse(value: str) -> datetime:
    assert ISO_Z.match(value), value
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def url(task: Any) -> str:
    return Harness.url(task.public_id, "result")


def pr(task: Any, **fields: Any) -> dict[str, Any]:
    """An in-scope pull request of the task's repository, with ``fields`` overriding."""
    return {"number": 7, "branch": "ether/fix-flaky", "url": f"{task.repo.url}/pull/7", **fields}


@pytest.fixture
def task(world: Any) -> Any:
    """The scope rule below is judged against this branch scope and the task's repository."""
    return world.task(branch_scope="ether/*")


def timeline_kinds(task: Any) -> list[str]:
    events = Event.objects.filter(task=task, name="task.timeline").order_by("seq")
    return [e.payload.get("kind") for e in events]
