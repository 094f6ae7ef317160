"""Bodies and requests that once reached a 500 or leaked internals (review findings)."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from tasks.models import Event, Interrupt, Result, Run, RunStatus, Task, TaskStatus
from tests.helpers import problem


@pytest.mark.parametrize(
    "raw",
    [
        '{"app_id": ' + "[" * 100_000 + "]" * 100_000 + "}",
        '{"app_id": ' + "[" * 70 + "]" * 70 + "}",
        '{"app_id": "builder", "n": 1e400}',
        '{"app_id": "builder", "n": NaN}',
        '{"app_id": "builder", "n": -Infinity}',
        '{"app_id": "a\\u0000b"}',
        '{"app_id": "\\ud800"}',
        '{"app\\u0000id": "builder"}',
    ],
    ids=[
        "deep-nesting",
        "nesting-past-64",
        "1e400",
        "NaN",
        "-Infinity",
        "nul",
        "surrogate",
        "nul-key",
    ],
)
def test_bodies_the_database_cannot_store_are_400(world, task, harness, raw):
    response = harness.post(harness.url(task.public_id, "claim"), raw=raw)
    problem(response, 400, "malformed_json")
    assert not Run.objects.exists()


def test_unstorable_artifact_is_400_and_stores_nothing(world, task, harness, claimed):
    url = harness.url(task.public_id, "result")
    for artifact in ('{"score": 1e400}', '{"note": "a\\u0000b"}', '{"note": "\\udfff"}'):
        run_id = claimed["run_id"]
        raw = (
            f'{{"run_id": "{run_id}", "status": "no_changes", "agent_status": "x",'
            f' "no_changes_reason": "y", "artifact": {artifact}}}'
        )
        problem(
            harness.post(url, raw=raw, HTTP_IDEMPOTENCY_KEY="k-" + artifact), 400, "malformed_json"
        )
    assert not Result.objects.exists()
    assert Run.objects.get(public_id=claimed["run_id"]).status == RunStatus.LIVE


def test_task_cursor_carries_no_integer_primary_key(world):
    first, second = world.task(), world.task()
    page = world.person().get("/api/tasks?limit=1").json()
    assert page["data"][0]["id"] == second.public_id
    raw = page["next_cursor"]
    decoded = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    assert decoded == {"p": second.public_id}
    rest = world.person().get(f"/api/tasks?limit=1&cursor={raw}").json()
    assert [t["id"] for t in rest["data"]] == [first.public_id]
    problem(world.person().get("/api/tasks?cursor=eyJwIjogM30"), 400, "validation_error")


@pytest.mark.parametrize("path", ["/api/nope", "/api/tasks/", "/v1/nothing"])
def test_unsafe_requests_to_unknown_api_paths_are_404_problems_even_with_csrf(db, path):
    client = Client(enforce_csrf_checks=True)
    response = client.post(path, "{}", content_type="application/json")
    problem(response, 404, "not_found")


@pytest.mark.parametrize(
    ("method", "path", "extra", "status"),
    [
        ("post", "/api/schema/", {}, 405),
        ("get", "/api/schema/?format=xml", {}, 404),
        ("post", "/api/docs/", {}, 405),
    ],
)
def test_errors_of_the_schema_and_docs_views_are_json(db, method, path, extra, status):
    response = getattr(Client(), method)(path, **extra)
    assert response.status_code == status
    assert response["Content-Type"] == "application/problem+json"
    assert json.loads(response.content)["status"] == status


def test_release_of_a_paused_run_puts_the_task_back_to_ready(world, task, harness, claimed):
    harness.interrupt(task.public_id, claimed["run_id"], question="Which DB?")
    response = world.person().post(f"/api/tasks/{task.public_id}/release")
    assert response.status_code == 200
    assert response.json()["status"] == TaskStatus.READY
    assert response.json()["open_question"] is None
    assert Interrupt.objects.get(task=task).withdrawn_at is not None
    assert Task.objects.get(pk=task.pk).status == TaskStatus.READY
    assert world.rival_harness().claim(task.public_id).status_code == 200


def test_lapsed_lease_is_recorded_even_when_the_write_carries_a_key(world, task, harness):
    with time_machine.travel(timezone.now(), tick=False) as clock:
        run_id = harness.claim(task.public_id).json()["run_id"]
        clock.shift(timedelta(seconds=301))
        url = harness.url(task.public_id, "heartbeat")
        response = harness.post(url, {"run_id": run_id}, HTTP_IDEMPOTENCY_KEY="late")
        problem(response, 409, "lease_lost")
    assert Run.objects.get(public_id=run_id).status == RunStatus.EXPIRED
    assert Task.objects.get(pk=task.pk).status == TaskStatus.READY
    assert Event.objects.filter(task=task, payload__kind="lease_expired").count() == 1
