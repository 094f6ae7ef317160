"""Lease expiry at its exact boundary, with a controlled clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.management import call_command

from tasks.models import Event, Result, Run, RunStatus, Step, Task, TaskStatus
from tests.helpers import problem

START = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)
LEASE = timedelta(seconds=300)
TICK = timedelta(microseconds=1)


@pytest.fixture
def clock():
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


def expiry_entries(task: Task) -> int:
    return Event.objects.filter(task=task, payload__kind="lease_expired").count()


def test_lease_is_live_until_the_last_microsecond(world, task, harness, clock):
    run_id = harness.claim(task.public_id).json()["run_id"]
    clock.move_to(START + LEASE - TICK)
    assert harness.step(task.public_id, run_id).status_code == 201
    assert harness.heartbeat(task.public_id, run_id).status_code == 200
    run = Run.objects.get(public_id=run_id)
    assert run.lease_expires_at == START + LEASE - TICK + LEASE


def test_writes_at_the_expiry_instant_are_409_and_store_nothing(world, task, harness, clock):
    claim = harness.claim(task.public_id).json()
    run_id = claim["run_id"]
    assert harness.step(task.public_id, run_id, client_step_id="a").status_code == 201
    clock.move_to(START + LEASE)

    problem(
        harness.heartbeat(task.public_id, run_id, checkpoint={"note": "late"}), 409, "lease_lost"
    )
    problem(harness.step(task.public_id, run_id, client_step_id="b"), 409, "lease_lost")
    problem(harness.interrupt(task.public_id, run_id), 409, "lease_lost")
    problem(harness.result(task.public_id, run_id), 409, "lease_lost")

    run = Run.objects.get(public_id=run_id)
    assert run.status == RunStatus.EXPIRED
    assert run.lease_expires_at == START + LEASE
    assert run.checkpoint is None
    assert Step.objects.filter(run=run).count() == 1
    assert not Result.objects.exists()
    assert Task.objects.get(pk=task.pk).status == TaskStatus.READY
    assert expiry_entries(task) == 1


def test_expired_lease_is_no_lease_for_any_app(world, task, harness, clock):
    old = harness.claim(task.public_id).json()
    clock.move_to(START + LEASE)
    new = world.rival_harness().claim(task.public_id)
    assert new.status_code == 200
    assert new.json()["run_id"] != old["run_id"]
    assert new.json()["lease_epoch"] == old["lease_epoch"] + 1
    assert Run.objects.get(public_id=old["run_id"]).status == RunStatus.EXPIRED
    assert expiry_entries(task) == 1
    # The old holder is fenced off, whatever it sends.
    problem(harness.step(task.public_id, old["run_id"]), 409, "lease_lost")
    problem(harness.claim(task.public_id), 409, "lease_held")


def test_expiry_is_recorded_once_by_sweeper_and_lazy_access(world, task, harness, clock):
    run_id = harness.claim(task.public_id).json()["run_id"]
    clock.move_to(START + LEASE + timedelta(seconds=5))
    call_command("sweep_leases", "--once")
    call_command("sweep_leases", "--once")
    world.person().get(f"/api/tasks/{task.public_id}")
    problem(harness.heartbeat(task.public_id, run_id), 409, "lease_lost")
    assert expiry_entries(task) == 1
    assert Run.objects.get(public_id=run_id).status == RunStatus.EXPIRED


def test_paused_task_keeps_waiting_after_its_lease_expires(world, task, harness, clock):
    run_id = harness.claim(task.public_id).json()["run_id"]
    harness.interrupt(task.public_id, run_id, question="Postgres or SQLite?")
    clock.move_to(START + LEASE)
    call_command("sweep_leases", "--once")
    assert Task.objects.get(pk=task.pk).status == TaskStatus.PAUSED
    problem(world.rival_harness().claim(task.public_id), 409, "task_paused")
    answered = world.person().post(f"/api/tasks/{task.public_id}/answer", {"answer": "Postgres"})
    assert answered.status_code == 200
    assert answered.json()["status"] == TaskStatus.READY
    bundle = world.rival_harness().claim(task.public_id).json()["bundle"]
    assert bundle["questions"][0]["question"] == "Postgres or SQLite?"
    assert bundle["questions"][0]["answer"] == "Postgres"


def test_heartbeat_keeps_a_paused_lease_and_returns_the_answer(world, task, harness, clock):
    run_id = harness.claim(task.public_id).json()["run_id"]
    harness.interrupt(task.public_id, run_id, question="Rename it?", choices=["yes", "no"])
    clock.move_to(START + LEASE - timedelta(seconds=1))
    beat = harness.heartbeat(task.public_id, run_id)
    assert beat.status_code == 200 and beat.json()["task_status"] == TaskStatus.PAUSED
    assert beat.json()["lease_seconds_left"] == 300
    clock.move_to(START + LEASE + timedelta(seconds=10))
    world.person().post(f"/api/tasks/{task.public_id}/answer", {"answer": "yes"})
    assert Task.objects.get(pk=task.pk).status == TaskStatus.IN_PROGRESS
    answers = harness.heartbeat(task.public_id, run_id).json()["answers"]
    assert [(a["question"], a["answer"]) for a in answers] == [("Rename it?", "yes")]
