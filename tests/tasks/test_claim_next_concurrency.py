"""64 callers race claim-next for 10 tasks through real threads and real connections
(one look each: the in-process client; the daphne version is in test_claim_next_server).

Half the callers are apps of their own, half share keys in pairs, so a task must not go
twice to one app either (a same-app claim by id would renew; claim-next never does)."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from django.db import connection

from tasks.models import Run, RunStatus, Task, TaskStatus
from tests import factories
from tests.helpers import Harness

CALLERS = 64
TASKS = 10


def patient_locks() -> None:
    """As in test_claim_concurrency: under CI load, queued transactions may pass the 5 s
    lock timeout and get a correct 503; this test is about who wins."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '60s'")


@pytest.mark.django_db(transaction=True)
def test_64_callers_10_tasks_each_task_granted_exactly_once():
    org = factories.make_org("nextrace")
    tasks = [factories.make_task(org, title=f"t{i}") for i in range(TASKS)]
    harnesses = []
    for i in range(CALLERS // 2):
        app, key = factories.make_app(org, f"solo-{i}")
        harnesses.append(Harness(key, app.app_id))
    for i in range(CALLERS // 4):
        app, key = factories.make_app(org, f"pair-{i}")
        harnesses += [Harness(key, app.app_id), Harness(key, app.app_id)]
    assert len(harnesses) == CALLERS

    barrier = threading.Barrier(CALLERS)
    results: list[tuple[int, dict | None]] = [(0, None)] * CALLERS

    def call(index: int, harness: Harness) -> None:
        try:
            patient_locks()
            barrier.wait(timeout=30)
            response = harness.post("/api/harness/claim-next", {"app_id": harness.app_id})
            results[index] = (
                response.status_code,
                response.json() if response.status_code == 200 else None,
            )
        finally:
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute("RESET lock_timeout")
            connection.close()

    threads = [threading.Thread(target=call, args=(i, h)) for i, h in enumerate(harnesses)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)
    assert all(not t.is_alive() for t in threads), "a caller hung"

    statuses = Counter(status for status, _ in results)
    assert statuses == {200: TASKS, 204: CALLERS - TASKS}, statuses
    granted = [body["bundle"]["task_id"] for status, body in results if status == 200]
    assert sorted(granted) == sorted(t.public_id for t in tasks)
    for task in tasks:
        stored = Task.objects.get(pk=task.pk)
        assert stored.status == TaskStatus.IN_PROGRESS and stored.lease_epoch == 1
        assert Run.objects.filter(task=task).count() == 1
        assert Run.objects.filter(task=task, status=RunStatus.LIVE).count() == 1
        assert task.events.filter(name="task.timeline", payload__kind="claim").count() == 1
    run_ids = {body["run_id"] for status, body in results if status == 200}
    assert len(run_ids) == TASKS
