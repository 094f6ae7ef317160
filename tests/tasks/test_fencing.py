"""Fencing: a harness that does not hold the task's live lease cannot write.

The four harness writes (steps, interrupt, heartbeat, result; docs/contract.md §3) refuse a run
that is not the task's live run for this lease: another task's run, an unknown run, an
expired, released or finished run, or a stale ``lease_epoch``. Each refusal is a problem
document and stores nothing: the whole-database snapshot (``stored()``) is unchanged and
the write's own row (the step, the question, the checkpoint, the result) does not exist.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from delivery.models import Delivery
from tasks.models import Interrupt, Result, Run, RunStatus, Step, Task, TaskStatus
from tests.helpers import Harness, past_expiry, problem, stored

UNKNOWN_RUN = "run_" + "0" * 32
CHECKPOINT = {"branch": "ether/fix-flaky", "head_sha": "0123abcd", "note": "fenced"}


def in_scope_pr(task: Task) -> dict[str, Any]:
    """A pull request inside the task's repository and its branch scope ``ether/*``."""
    return {"number": 7, "branch": "ether/fix-flaky", "url": f"{task.repo.url}/pull/7"}


@dataclass(frozen=True)
class Write:
    """One harness write: how to send it, what it answers when accepted, and how to tell
    that it stored nothing."""

    route: str
    accepted: int
    send: Callable[..., Any]
    stored_nothing: Callable[[], bool]

    def __str__(self) -> str:
        return self.route


STEPS = Write(
    route="steps",
    accepted=201,
    send=lambda harness, task, run_id, **body: harness.step(
        task.public_id, run_id, "Running the test suite", **body
    ),
    stored_nothing=lambda: not Step.objects.exists(),
)
INTERRUPT = Write(
    route="interrupt",
    accepted=200,
    send=lambda harness, task, run_id, **body: harness.interrupt(
        task.public_id, run_id, "Which DB should I use?", **body
    ),
    stored_nothing=lambda: not Interrupt.objects.exists(),
)
HEARTBEAT = Write(
    route="heartbeat",
    accepted=200,
    send=lambda harness, task, run_id, **body: harness.heartbeat(
        task.public_id, run_id, checkpoint=CHECKPOINT, **body
    ),
    stored_nothing=lambda: all(run.checkpoint != CHECKPOINT for run in Run.objects.all()),
)
RESULT = Write(
    route="result",
    accepted=200,
    send=lambda harness, task, run_id, **body: harness.result(
        task.public_id,
        run_id,
        "submitted",
        agent_status="PR opened",
        artifact={"pr": in_scope_pr(task)},
        **body,
    ),
    stored_nothing=lambda: not Result.objects.exists() and not Delivery.objects.exists(),
)

WRITES = [STEPS, INTERRUPT, HEARTBEAT, RESULT]
# A finished run that sends a result again is a retry or 409 run_finished, not lease_lost
# (tests/delivery/test_result_api_outcomes.py).
WRITES_BUT_RESULT = [STEPS, INTERRUPT, HEARTBEAT]
# A heartbeat right after the cancel is how the harness learns of it: 200 with
# cancel_requested (tests/tasks/test_heartbeat_api.py).
WRITES_BUT_HEARTBEAT = [STEPS, INTERRUPT, RESULT]

each_write = pytest.mark.parametrize("write", WRITES, ids=str)


def ready_task(world: Any) -> Task:
    return world.task(branch_scope="ether/*")


def claim(harness: Harness, task: Task) -> dict[str, Any]:
    response = harness.claim(task.public_id)
    assert response.status_code == 200, response.content
    return response.json()


def refused(response: Any, status: int, code: str, before: dict[str, Any], write: Write) -> None:
    problem(response, status, code)
    assert stored() == before
    assert write.stored_nothing()


# --- 403: the run of another app ---------------------------------------------------------


@each_write
def test_run_of_another_app_is_403(world, harness, write):
    task = ready_task(world)
    run_id = claim(harness, task)["run_id"]
    before = stored()
    response = write.send(world.rival_harness(), task, run_id)
    refused(response, 403, "forbidden", before, write)
    assert Run.objects.get(public_id=run_id).status == RunStatus.LIVE


# --- 409 lease_lost: not this task's run -------------------------------------------------


@each_write
def test_run_of_another_task_is_409_lease_lost(world, harness, write):
    task = ready_task(world)
    claim(harness, task)
    other_run = claim(harness, ready_task(world))["run_id"]
    before = stored()
    refused(write.send(harness, task, other_run), 409, "lease_lost", before, write)


@each_write
def test_unknown_run_is_409_lease_lost(world, harness, write):
    task = ready_task(world)
    claim(harness, task)
    before = stored()
    refused(write.send(harness, task, UNKNOWN_RUN), 409, "lease_lost", before, write)


# --- 409 lease_lost: the run's lease is over ---------------------------------------------


@each_write
def test_expired_run_is_409_lease_lost(world, harness, write):
    task = ready_task(world)
    run_id = claim(harness, task)["run_id"]
    with past_expiry(run_id):
        # Reading the task records the expiry that time alone already decided.
        assert world.person().get(f"/api/tasks/{task.public_id}").status_code == 200
        before = stored()
        refused(write.send(harness, task, run_id), 409, "lease_lost", before, write)
    assert Run.objects.get(public_id=run_id).status == RunStatus.EXPIRED
    task.refresh_from_db()
    assert task.status == TaskStatus.READY


@each_write
def test_expired_run_is_409_lease_lost_before_anyone_recorded_the_expiry(world, harness, write):
    task = ready_task(world)
    run_id = claim(harness, task)["run_id"]
    lease_expires_at = Run.objects.get(public_id=run_id).lease_expires_at
    with past_expiry(run_id):
        problem(write.send(harness, task, run_id), 409, "lease_lost")
    assert write.stored_nothing()
    run = Run.objects.get(public_id=run_id)
    assert run.status == RunStatus.EXPIRED
    assert run.lease_expires_at == lease_expires_at


@each_write
def test_released_run_is_409_lease_lost(world, harness, write):
    task = ready_task(world)
    run_id = claim(harness, task)["run_id"]
    released = world.person().post(f"/api/tasks/{task.public_id}/release")
    assert released.status_code == 200, released.content
    before = stored()
    refused(write.send(harness, task, run_id), 409, "lease_lost", before, write)
    assert Run.objects.get(public_id=run_id).status == RunStatus.RELEASED
    task.refresh_from_db()
    assert task.status == TaskStatus.READY


@pytest.mark.parametrize("write", WRITES_BUT_RESULT, ids=str)
def test_finished_run_is_409_lease_lost(world, harness, write):
    task = ready_task(world)
    run_id = claim(harness, task)["run_id"]
    finished = harness.result(
        task.public_id, run_id, "no_changes", no_changes_reason="Already fixed upstream."
    )
    assert finished.status_code == 200, finished.content
    before = stored()
    refused(write.send(harness, task, run_id), 409, "lease_lost", before, write)
    assert Run.objects.get(public_id=run_id).status == RunStatus.FINISHED


# --- 409 lease_lost: a stale lease_epoch -------------------------------------------------


@each_write
def test_stale_lease_epoch_is_409_lease_lost(world, harness, write):
    task = ready_task(world)
    first = claim(harness, task)
    again = claim(harness, task)
    assert again["run_id"] == first["run_id"]
    assert again["lease_epoch"] == first["lease_epoch"] + 1
    before = stored()
    response = write.send(harness, task, first["run_id"], lease_epoch=first["lease_epoch"])
    refused(response, 409, "lease_lost", before, write)


@each_write
def test_current_lease_epoch_after_a_reclaim_is_accepted(world, harness, write):
    task = ready_task(world)
    claim(harness, task)
    again = claim(harness, task)
    response = write.send(harness, task, again["run_id"], lease_epoch=again["lease_epoch"])
    assert response.status_code == write.accepted, response.content
    assert not write.stored_nothing()


# --- 409 task_closed: the task was cancelled ---------------------------------------------


@pytest.mark.parametrize("write", WRITES_BUT_HEARTBEAT, ids=str)
def test_write_after_cancel_is_409_task_closed(world, harness, write):
    task = ready_task(world)
    run_id = claim(harness, task)["run_id"]
    cancelled = world.person().post(f"/api/tasks/{task.public_id}/cancel")
    assert cancelled.status_code == 200, cancelled.content
    before = stored()
    refused(write.send(harness, task, run_id), 409, "task_closed", before, write)
    task.refresh_from_db()
    assert task.status == TaskStatus.CANCELLED


@each_write
def test_write_after_the_heartbeat_that_saw_the_cancel_is_409_task_closed(world, harness, write):
    task = ready_task(world)
    run_id = claim(harness, task)["run_id"]
    cancelled = world.person().post(f"/api/tasks/{task.public_id}/cancel")
    assert cancelled.status_code == 200, cancelled.content
    beat = harness.heartbeat(task.public_id, run_id)
    assert beat.status_code == 200, beat.content
    assert beat.json()["cancel_requested"] is True
    before = stored()
    refused(write.send(harness, task, run_id), 409, "task_closed", before, write)
