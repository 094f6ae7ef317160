"""64 harness apps race for one task through real threads and real connections.

Runs on whichever database the suite is configured for: the SQLite file by default, and
Postgres when ``DATABASE_URL`` is set (``.ci/run`` runs both). Never inside one test
transaction: each thread has its own connection, as separate requests would.
"""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from django.db import connection

from tasks.models import Run, RunStatus, Task, TaskStatus
from tests import factories
from tests.helpers import Harness

CLAIMERS = 64


def patient_locks() -> None:
    """The 64 claims queue on one task row, one after another. On a loaded machine (CI
    beside other work) the last ones can wait past ETHER_DB_LOCK_TIMEOUT (5 s) and get a
    correct 503; this test is about who wins, not how fast, so its claims wait longer."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '60s'")


def _race(task_id: str, harnesses: list[Harness]) -> list[tuple[int, dict]]:
    barrier = threading.Barrier(len(harnesses))
    results: list[tuple[int, dict]] = [None] * len(harnesses)  # type: ignore[list-item]

    def claim(index: int, harness: Harness) -> None:
        try:
            patient_locks()
            barrier.wait(timeout=30)
            response = harness.claim(task_id)
            results[index] = (response.status_code, response.json())
        finally:
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute("RESET lock_timeout")  # the connection goes back to the pool
            connection.close()

    threads = [threading.Thread(target=claim, args=(i, h)) for i, h in enumerate(harnesses)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert all(not t.is_alive() for t in threads), "a claimer hung"
    return results


@pytest.mark.django_db(transaction=True)
def test_64_rival_claims_yield_exactly_one_lease():
    org = factories.make_org("race")
    task = factories.make_task(org)
    harnesses = []
    for i in range(CLAIMERS):
        app, key = factories.make_app(org, f"racer-{i}")
        harnesses.append(Harness(key, app.app_id))

    results = _race(task.public_id, harnesses)

    statuses = Counter(status for status, _ in results)
    assert statuses == {200: 1, 409: CLAIMERS - 1}, statuses
    winner = next(body for status, body in results if status == 200)
    losers = [body for status, body in results if status == 409]
    assert {body["code"] for body in losers} == {"lease_held"}
    holder = Run.objects.select_related("app").get(public_id=winner["run_id"]).app.app_id
    assert {body["holder_app_id"] for body in losers} == {holder}
    assert Run.objects.filter(task=task).count() == 1
    assert Run.objects.filter(task=task, status=RunStatus.LIVE).count() == 1
    stored = Task.objects.get(pk=task.pk)
    assert stored.status == TaskStatus.IN_PROGRESS
    assert stored.lease_epoch == 1
    claims = task.events.filter(name="task.timeline", payload__kind="claim").count()
    assert claims == 1


@pytest.mark.django_db(transaction=True)
def test_same_app_racing_itself_keeps_one_run():
    """A harness whose retries overlap gets its own run back every time, never two runs."""
    org = factories.make_org("selfrace")
    task = factories.make_task(org)
    app, key = factories.make_app(org, "twin")
    harnesses = [Harness(key, app.app_id) for _ in range(16)]

    results = _race(task.public_id, harnesses)

    assert {status for status, _ in results} == {200}
    assert len({body["run_id"] for _, body in results}) == 1
    assert sorted(body["lease_epoch"] for _, body in results) == list(range(1, 17))
    assert Run.objects.filter(task=task).count() == 1
    assert Task.objects.get(pk=task.pk).lease_epoch == 16
