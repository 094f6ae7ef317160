"""The SQL queries of a request do not grow with the task's history.

A task with 1 run, 1 step and 1 working document, and one with 50 of each: every harness
route and the person's reads of the task must take the same number of queries on both
(bench/bench_api.py reports these counts beside its latencies).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

pytestmark = pytest.mark.django_db


def count(call: Callable[[], Any]) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = call()
    assert response.status_code < 300, response.content
    return len(captured.captured_queries)


def history(world: Any, size: int) -> dict[str, int]:
    """``size`` runs on one task, each with a working summary (a document in the task's
    scope); the last run, still live, has ``size`` steps. Returns each route's queries."""
    harness, person = world.harness(), world.person()
    task = world.task()
    tid = task.public_id
    for n in range(size - 1):
        run = harness.claim(tid).json()["run_id"]
        assert harness.step(tid, run, f"step of run {n}").status_code == 201
        blocked = harness.result(
            tid, run, "blocked", working_summary=f"Run {n}: froze the clock in the fixture."
        )
        assert blocked.status_code == 200, blocked.content
        assert person.post(f"/api/tasks/{tid}/answer", {"answer": "yes"}).status_code == 200
    counts = {"claim": count(lambda: harness.claim(tid))}
    run = harness.claim(tid).json()["run_id"]
    for n in range(size - 1):
        harness.step(tid, run, f"step {n}")
    counts["step"] = count(lambda: harness.step(tid, run, "one more"))
    counts["heartbeat"] = count(lambda: harness.heartbeat(tid, run))
    counts["execution"] = count(lambda: harness.get(f"/api/harness/tasks/{tid}/execution"))
    counts["context"] = count(lambda: harness.get(f"/api/harness/context?task_id={tid}"))
    counts["context_doc"] = count(
        lambda: harness.get(f"/api/harness/context/doc/task/{tid}.md?task_id={tid}")
    )
    counts["task"] = count(lambda: person.get(f"/api/tasks/{tid}"))
    counts["timeline"] = count(lambda: person.get(f"/api/tasks/{tid}/timeline"))
    counts["delivery"] = count(lambda: person.get(f"/api/tasks/{tid}/delivery"))
    return counts


def test_queries_per_request_do_not_grow_with_steps_runs_or_documents(world):
    small = history(world, 1 + 1)  # the delivery route needs one finished run
    large = history(world, 50)
    assert large == small
