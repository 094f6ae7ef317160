"""POST /api/harness/tasks/{task_id}/heartbeat (docs/contract.md §3)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

import time_machine
from django.conf import settings as django_settings
from django.utils import timezone

from tasks.harnesses.keys import harness_app_revoke
from tasks.models import Interrupt, Run, RunStatus, TaskStatus
from tests.helpers import Harness, past_expiry, problem, stored

ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
CHECKPOINT = {"branch": "ether/fix-flaky", "head_sha": "0123abcd", "note": "tests green"}


def lease() -> timedelta:
    return timedelta(seconds=django_settings.ETHER_LEASE_SECONDS)


def parse(value: str) -> datetime:
    assert ISO_Z.match(value), value
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def url(task: Any) -> str:
    return Harness.url(task.public_id, "heartbeat")


# --- 200 ---------------------------------------------------------------------------------


def test_heartbeat_extends_lease_by_its_length_and_keeps_checkpoint(task, harness, claimed):
    run_id = claimed["run_id"]
    later = (timezone.now() + timedelta(seconds=120)).replace(microsecond=0)
    with time_machine.travel(later, tick=False):
        response = harness.heartbeat(
            task.public_id, run_id, lease_epoch=claimed["lease_epoch"], checkpoint=CHECKPOINT
        )
    assert response.status_code == 200, response.content
    body = response.json()
    assert parse(body.pop("lease_expires_at")) == later + lease()
    assert body == {
        "run_id": run_id,
        "lease_epoch": claimed["lease_epoch"],
        "lease_seconds_left": django_settings.ETHER_LEASE_SECONDS,
        "task_status": "in_progress",
        "cancel_requested": False,
        "answers": [],
        "messages": [],
    }
    run = Run.objects.get(public_id=run_id)
    assert run.status == RunStatus.LIVE
    assert run.lease_expires_at == later + lease()
    assert run.lease_epoch == claimed["lease_epoch"]
    assert run.checkpoint == CHECKPOINT
    assert run.checkpoint_at == later
    task.refresh_from_db()
    assert task.status == TaskStatus.IN_PROGRESS
    assert task.lease_epoch == claimed["lease_epoch"]


def test_heartbeat_keeps_the_lease_alive_past_the_first_expiry(task, harness, claimed):
    run_id = claimed["run_id"]
    first_expiry = parse(claimed["lease_expires_at"]).replace(microsecond=0)
    with time_machine.travel(first_expiry - timedelta(seconds=10), tick=False):
        assert harness.heartbeat(task.public_id, run_id).status_code == 200
    with time_machine.travel(first_expiry + timedelta(seconds=60), tick=False):
        response = harness.heartbeat(task.public_id, run_id)
        assert response.status_code == 200, response.content
        assert response.json()["task_status"] == "in_progress"
    run = Run.objects.get(public_id=run_id)
    assert run.status == RunStatus.LIVE
    assert run.lease_expires_at == first_expiry + timedelta(seconds=60) + lease()
    assert Run.objects.filter(task=task).count() == 1


def test_heartbeat_without_checkpoint_keeps_the_last_one(task, harness, claimed):
    run_id = claimed["run_id"]
    assert harness.heartbeat(task.public_id, run_id, checkpoint=CHECKPOINT).status_code == 200
    checkpoint_at = Run.objects.get(public_id=run_id).checkpoint_at
    response = harness.heartbeat(task.public_id, run_id)
    assert response.status_code == 200
    assert response.json()["run_id"] == run_id
    run = Run.objects.get(public_id=run_id)
    assert run.checkpoint == CHECKPOINT
    assert run.checkpoint_at == checkpoint_at


def test_later_claimer_sees_the_expired_runs_checkpoint(world, task, harness, claimed):
    run_id = claimed["run_id"]
    assert harness.heartbeat(task.public_id, run_id, checkpoint=CHECKPOINT).status_code == 200
    old = Run.objects.get(public_id=run_id)
    with past_expiry(run_id):
        response = world.rival_harness().claim(task.public_id)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["run_id"] != run_id
    checkpoint = body["bundle"]["checkpoint"]
    assert parse(checkpoint.pop("at")) == old.checkpoint_at
    assert checkpoint == {**CHECKPOINT, "run_id": run_id}
    old.refresh_from_db()
    assert old.status == RunStatus.EXPIRED
    new = Run.objects.get(public_id=body["run_id"])
    assert new.app == world.rival and new.status == RunStatus.LIVE


def test_heartbeat_after_user_answered_returns_the_answer(world, task, harness, claimed):
    run_id = claimed["run_id"]
    asked = harness.interrupt(task.public_id, run_id, "Which DB?", choices=["sqlite", "postgres"])
    assert asked.status_code == 200, asked.content
    answered = world.person().post(f"/api/tasks/{task.public_id}/answer", {"answer": "postgres"})
    assert answered.status_code == 200, answered.content
    response = harness.heartbeat(task.public_id, run_id)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["task_status"] == "in_progress"
    assert body["cancel_requested"] is False
    [answer] = body["answers"]
    assert parse(answer.pop("asked_at")) and parse(answer.pop("answered_at"))
    assert answer == {
        "interrupt_id": asked.json()["interrupt_id"],
        "run_id": run_id,
        "source": "interrupt",
        "question": "Which DB?",
        "choices": ["sqlite", "postgres"],
        "allow_free_text": False,
        "answer": "postgres",
        "answered_by": world.user.username,
        "withdrawn_at": None,
    }
    interrupt = Interrupt.objects.get(task=task)
    assert interrupt.answer == "postgres" and interrupt.answered_by == world.user
    task.refresh_from_db()
    assert task.status == TaskStatus.IN_PROGRESS


def test_heartbeat_while_paused_still_extends_the_lease(task, harness, claimed):
    run_id = claimed["run_id"]
    assert harness.interrupt(task.public_id, run_id).status_code == 200
    later = (timezone.now() + timedelta(seconds=200)).replace(microsecond=0)
    with time_machine.travel(later, tick=False):
        response = harness.heartbeat(task.public_id, run_id)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["task_status"] == "paused"
    assert body["answers"] == []
    assert parse(body["lease_expires_at"]) == later + lease()
    run = Run.objects.get(public_id=run_id)
    assert run.status == RunStatus.LIVE and run.lease_expires_at == later + lease()
    task.refresh_from_db()
    assert task.status == TaskStatus.PAUSED


def test_first_heartbeat_after_cancel_reports_it_and_ends_the_run(world, task, harness, claimed):
    run_id = claimed["run_id"]
    cancelled = world.person().post(f"/api/tasks/{task.public_id}/cancel")
    assert cancelled.status_code == 200, cancelled.content
    response = harness.heartbeat(task.public_id, run_id)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["run_id"] == run_id
    assert body["cancel_requested"] is True
    assert body["task_status"] == "cancelled"
    assert body["lease_seconds_left"] == 0
    run = Run.objects.get(public_id=run_id)
    assert run.status != RunStatus.LIVE
    assert run.ended_at is not None
    task.refresh_from_db()
    assert task.status == TaskStatus.CANCELLED


# The heartbeats after that one are 409 task_closed: tests/tasks/test_fencing.py.


# --- 400 ---------------------------------------------------------------------------------


def test_heartbeat_validation_errors_are_400(task, harness, claimed):
    run_id = claimed["run_id"]
    before = stored()
    problem(harness.post(url(task), raw="{nope"), 400, "malformed_json")
    problem(harness.post(url(task), raw="[1,2]"), 400, "validation_error")
    body = problem(harness.post(url(task), {}), 400, "validation_error")
    assert "run_id" in body["errors"]
    body = problem(harness.post(url(task), {"run_id": 7}), 400, "validation_error")
    assert body["errors"]["run_id"] == ["Must be a string."]
    for bad in ("run_123", "task_" + "0" * 32, "run_" + "A" * 32, run_id + "0"):
        body = problem(harness.post(url(task), {"run_id": bad}), 400, "validation_error")
        assert list(body["errors"]) == ["run_id"], bad
    body = problem(harness.heartbeat(task.public_id, run_id, extra=1), 400, "validation_error")
    assert body["errors"] == {"extra": ["Unknown field."]}
    body = problem(
        harness.heartbeat(task.public_id, run_id, lease_epoch="1"), 400, "validation_error"
    )
    assert body["errors"]["lease_epoch"] == ["Must be an integer."]
    body = problem(
        harness.heartbeat(task.public_id, run_id, checkpoint="x"), 400, "validation_error"
    )
    assert "checkpoint" in body["errors"]
    body = problem(
        harness.heartbeat(task.public_id, run_id, checkpoint={"branch": 5}), 400, "validation_error"
    )
    assert body["errors"]["checkpoint.branch"] == ["Must be a string."]
    body = problem(
        harness.heartbeat(task.public_id, run_id, checkpoint={"sha": "abc"}),
        400,
        "validation_error",
    )
    assert body["errors"]["checkpoint.sha"] == ["Unknown field."]
    assert stored() == before


def test_heartbeat_body_that_is_not_json_is_415(task, harness, claimed):
    before = stored()
    raw = f"run_id={claimed['run_id']}"
    response = harness.post(url(task), raw=raw, content_type="text/plain")
    problem(response, 415, "unsupported_media_type")
    assert stored() == before


# --- 401 / 403 / 404 / 405 ---------------------------------------------------------------


def test_heartbeat_auth_failures_are_401(world, task, claimed):
    run_id = claimed["run_id"]
    before = stored()
    response = Harness("", world.app.app_id).heartbeat(task.public_id, run_id)
    problem(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"].startswith("Bearer")
    problem(
        Harness("eth_app_wrong", world.app.app_id).heartbeat(task.public_id, run_id),
        401,
        "not_authenticated",
    )
    problem(
        Harness(world.token, world.app.app_id).heartbeat(task.public_id, run_id),
        401,
        "not_authenticated",
    )
    assert stored() == before
    harness_app_revoke(org=world.org, app_id=world.app.app_id)
    before = stored()
    response = world.harness().heartbeat(task.public_id, run_id)
    assert "revoked" in problem(response, 401, "not_authenticated")["detail"]
    assert stored() == before


def test_heartbeat_unknown_other_org_and_malformed_task_ids_are_404(world, task, harness, claimed):
    run_id = claimed["run_id"]
    before = stored()
    problem(harness.heartbeat("task_" + "0" * 32, run_id), 404, "not_found")
    problem(harness.heartbeat("task_nothex", run_id), 404, "not_found")
    problem(harness.heartbeat("nope", run_id), 404, "not_found")
    problem(world.outsider_harness().heartbeat(task.public_id, run_id), 404, "not_found")
    assert stored() == before


def test_heartbeat_get_is_405(task, harness, claimed):
    before = stored()
    response = harness.get(url(task))
    problem(response, 405, "method_not_allowed")
    assert "POST" in response["Allow"]
    assert stored() == before


# --- 409: fencing -----------------------------------------------------------------------
# Another app's run (403), another task's or an unknown run, an expired, released or
# finished run, a stale lease_epoch (409 lease_lost) and writes after a cancel (409
# task_closed) are tests/tasks/test_fencing.py, once for all four harness writes.


# --- 413 ---------------------------------------------------------------------------------


def test_heartbeat_body_over_the_limit_is_413(settings, task, harness, claimed):
    settings.ETHER_MAX_BODY_BYTES = 2048
    before = stored()
    checkpoint = {**CHECKPOINT, "note": "x" * 3000}
    response = harness.heartbeat(task.public_id, claimed["run_id"], checkpoint=checkpoint)
    problem(response, 413, "payload_too_large")
    assert stored() == before
