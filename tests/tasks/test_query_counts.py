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

from tests.helpers import row_statements

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _keys_stay_cached(settings: Any) -> None:
    """A harness key is looked up at its first use and then cached for
    ETHER_AUTH_CACHE_SECONDS (tasks/harnesses/auth.py); building a long history on a
    loaded machine can take longer than that, and a count must not depend on the clock."""
    settings.ETHER_AUTH_CACHE_SECONDS = 3600


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
    counts["context_pack"] = count(
        lambda: harness.get(f"/api/harness/context/pack?task_id={tid}&budget_bytes=100000")
    )
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


def busy_tasks(world: Any, size: int) -> None:
    """``size`` more tasks, each claimed by its own run and most paused on a question, so
    every task of a list has a live run and an open question to show; and as many ready
    tasks, one in two assigned, for the harness's list and claim-next."""
    harness = world.harness()
    for n in range(size):
        world.task(title=f"Ready {n}", assigned_app_id="builder" if n % 2 else None)
        tid = world.task(title=f"Task {n}").public_id
        run = harness.claim(tid).json()["run_id"]
        if n % 3 != 1:  # the first task of each batch has a question
            assert harness.interrupt(tid, run).status_code == 200


def list_counts(world: Any) -> dict[str, int]:
    person = world.person()
    return {
        "tasks": count(lambda: person.get("/api/tasks?limit=100")),
        "tasks_by_status": count(lambda: person.get("/api/tasks?status=paused&limit=100")),
        "harness_apps": count(lambda: person.get("/api/harness-apps?limit=100")),
        "harnesses": count(lambda: person.get("/v1/harnesses?limit=100")),
        "documents": count(lambda: person.get("/api/context/docs?limit=100")),
        "harness_tasks": count(lambda: world.harness().get("/api/harness/tasks?limit=100")),
        "claim_next": count(
            lambda: world.harness().post("/api/harness/claim-next", {"app_id": "builder"})
        ),
    }


def test_list_queries_do_not_grow_with_the_number_of_rows(world):
    """GET /api/tasks took 5 queries for 1 task and 45 for 21 (a live run and an open
    question read per task); every list now reads a page in a fixed number of queries."""
    busy_tasks(world, 1)
    small = list_counts(world)
    busy_tasks(world, 20)
    large = list_counts(world)
    assert large == small


# Issue 18: the most frequent harness requests, counted as they run in production: each
# request in its own transaction (no test transaction around it, so no SAVEPOINTs), with
# the real authentication path (the key's first use looks the app up; later uses of the
# same key in this process find it in the auth cache, as a harness sending steps does).
# Counted: every statement that reads or writes rows (tests.helpers.row_statements). Not
# counted: transaction control (BEGIN, COMMIT, SAVEPOINT), which Django logs on SQLite and
# not always on Postgres; each of these requests is one transaction, so that is two more
# on SQLite (docs/performance.md).
BUDGETS = {"step": 6, "heartbeat": 4, "claim": 12, "context_doc": 3}


def statements(call: Callable[[], Any]) -> tuple[int, list[str]]:
    with CaptureQueriesContext(connection) as captured:
        response = call()
    assert response.status_code < 300, response.content
    sql = row_statements(captured)
    return len(sql), [text[:120] for text in sql]


def harness_counts(world: Any) -> dict[str, tuple[int, list[str]]]:
    harness = world.harness()
    tid = world.task().public_id
    ready = world.task().public_id
    run = harness.claim(tid).json()["run_id"]
    harness.step(tid, run, "first")  # the topic's counter row exists from the claim on
    return {
        "step": statements(lambda: harness.step(tid, run, "one more")),
        "heartbeat": statements(lambda: harness.heartbeat(tid, run)),
        "claim": statements(lambda: harness.claim(ready)),
        "context_doc": statements(
            lambda: harness.get(f"/api/harness/context/doc/task/{tid}.md?task_id={tid}")
        ),
    }


@pytest.mark.django_db(transaction=True)
def test_harness_requests_stay_within_their_query_budgets(world):
    counts = harness_counts(world)
    over = {route: counts[route] for route, (n, _sql) in counts.items() if n > BUDGETS[route]}
    assert not over, over


@pytest.mark.django_db(transaction=True)
def test_an_idempotency_key_costs_two_statements_more(world):
    """ether_client sends an Idempotency-Key with every POST: the key's row is inserted
    and committed before the work (a concurrent retry must see it in flight) and
    completed in the work's transaction. Nothing else: a lapsed lease is settled only
    when the write is refused."""
    harness = world.harness()
    tid = world.task().public_id
    run = harness.claim(tid).json()["run_id"]
    harness.step(tid, run, "first")
    keyed = {"HTTP_IDEMPOTENCY_KEY": "k-1"}
    n, sql = statements(
        lambda: harness.post(
            harness.url(tid, "steps"),
            {"run_id": run, "phase": "coding_agent", "user_message": "keyed"},
            **keyed,
        )
    )
    assert n <= BUDGETS["step"] + 2, sql
    n, sql = statements(
        lambda: harness.post(
            harness.url(tid, "heartbeat"), {"run_id": run}, HTTP_IDEMPOTENCY_KEY="k-2"
        )
    )
    assert n <= BUDGETS["heartbeat"] + 2, sql
