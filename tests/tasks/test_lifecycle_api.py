from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.conf import settings
from django.utils import timezone

from tasks.models import Event, Interrupt, Run, RunStatus, Step, Task, TaskStatus
from tests.helpers import Caller, problem

ROUTES = ["reopen", "cancel", "release"]


def url(task, route: str) -> str:
    return f"/api/tasks/{task.public_id}/{route}"


def timeline_kinds(task) -> list[str]:
    rows = Event.objects.filter(task=task, name="task.timeline").order_by("seq")
    return [e.payload["kind"] for e in rows]


def status_of(task) -> str:
    return Task.objects.values_list("status", flat=True).get(pk=task.pk)


# --- reopen ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("result", "closed"), [("no_changes", "no_changes"), ("submitted", "completed")]
)
def test_reopen_puts_finished_task_back_to_ready(world, task, harness, claimed, result, closed):
    assert harness.result(task.public_id, claimed["run_id"], status=result).status_code == 200
    assert status_of(task) == closed
    response = world.person().post(url(task, "reopen"))
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["id"] == task.public_id
    assert body["status"] == "ready"
    assert body["live_run"] is None
    assert status_of(task) == TaskStatus.READY
    assert timeline_kinds(task)[-1] == "reopen"
    reopen = Event.objects.filter(task=task, payload__kind="reopen").get()
    assert reopen.payload["actor"] == {"type": "user", "username": "alice"}
    activity = Event.objects.filter(task=task, name="activity.list_updated").order_by("seq").last()
    assert activity.payload["status"] == "ready"


def test_reopened_task_can_be_claimed_again(world, task, harness, claimed):
    harness.result(task.public_id, claimed["run_id"])
    world.person().post(url(task, "reopen"))
    again = world.rival_harness().claim(task.public_id)
    assert again.status_code == 200, again.content
    assert again.json()["run_id"] != claimed["run_id"]
    assert Run.objects.filter(task=task).count() == 2
    assert status_of(task) == TaskStatus.IN_PROGRESS


def test_reopen_ready_task_is_409_invalid_transition(world, task):
    body = problem(world.person().post(url(task, "reopen")), 409, "invalid_transition")
    assert "ready" in body["detail"]
    assert status_of(task) == TaskStatus.READY
    assert timeline_kinds(task) == ["created"]


def test_reopen_in_progress_task_is_409_invalid_transition(world, task, claimed):
    problem(world.person().post(url(task, "reopen")), 409, "invalid_transition")
    assert status_of(task) == TaskStatus.IN_PROGRESS
    assert Run.objects.get(public_id=claimed["run_id"]).status == RunStatus.LIVE
    assert timeline_kinds(task) == ["created", "claim"]


def test_reopen_paused_task_is_409_invalid_transition(world, task, harness, claimed):
    harness.interrupt(task.public_id, claimed["run_id"])
    problem(world.person().post(url(task, "reopen")), 409, "invalid_transition")
    assert status_of(task) == TaskStatus.PAUSED
    assert "reopen" not in timeline_kinds(task)


def test_reopen_cancelled_task_is_409_invalid_transition(world, task):
    world.person().post(url(task, "cancel"))
    problem(world.person().post(url(task, "reopen")), 409, "invalid_transition")
    assert status_of(task) == TaskStatus.CANCELLED
    assert "reopen" not in timeline_kinds(task)


# --- cancel ---------------------------------------------------------------------------


def test_cancel_ready_task(world, task):
    response = world.person().post(url(task, "cancel"))
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "cancelled"
    assert body["cancel_requested"] is False
    task.refresh_from_db()
    assert task.status == TaskStatus.CANCELLED
    assert task.cancel_requested is False
    assert timeline_kinds(task) == ["created", "cancel"]
    cancel = Event.objects.get(task=task, payload__kind="cancel")
    assert cancel.payload["actor"] == {"type": "user", "username": "alice"}


def test_cancel_twice_is_409_task_closed(world, task):
    person = world.person()
    assert person.post(url(task, "cancel")).status_code == 200
    events = Event.objects.count()
    problem(person.post(url(task, "cancel")), 409, "task_closed")
    assert status_of(task) == TaskStatus.CANCELLED
    assert Event.objects.count() == events


@pytest.mark.parametrize("result", ["no_changes", "submitted"])
def test_cancel_finished_task_is_409_task_closed(world, task, harness, claimed, result):
    harness.result(task.public_id, claimed["run_id"], status=result)
    before = status_of(task)
    problem(world.person().post(url(task, "cancel")), 409, "task_closed")
    assert status_of(task) == before
    assert "cancel" not in timeline_kinds(task)


def test_live_run_sees_cancel_requested_on_next_heartbeat(world, task, harness, claimed):
    response = world.person().post(url(task, "cancel"))
    assert response.status_code == 200
    assert response.json()["cancel_requested"] is True
    task.refresh_from_db()
    assert task.status == TaskStatus.CANCELLED and task.cancel_requested is True
    # The run is still live until it hears of the cancellation.
    assert Run.objects.get(public_id=claimed["run_id"]).status == RunStatus.LIVE

    beat = harness.heartbeat(task.public_id, claimed["run_id"])
    assert beat.status_code == 200, beat.content
    body = beat.json()
    assert body["cancel_requested"] is True
    assert body["task_status"] == "cancelled"
    run = Run.objects.get(public_id=claimed["run_id"])
    assert run.status != RunStatus.LIVE
    assert run.ended_at is not None
    assert timeline_kinds(task)[-2:] == ["cancel", "cancel_acknowledged"]


def test_cancelled_task_refuses_every_write_of_its_run(world, task, harness, claimed):
    world.person().post(url(task, "cancel"))
    run_id = claimed["run_id"]
    problem(harness.step(task.public_id, run_id), 409, "task_closed")
    problem(harness.interrupt(task.public_id, run_id), 409, "task_closed")
    problem(harness.result(task.public_id, run_id), 409, "task_closed")
    harness.heartbeat(task.public_id, run_id)
    problem(harness.heartbeat(task.public_id, run_id), 409, "task_closed")
    problem(harness.step(task.public_id, run_id), 409, "task_closed")
    assert not Step.objects.exists()
    assert not Interrupt.objects.exists()
    assert status_of(task) == TaskStatus.CANCELLED


def test_cancel_closes_the_open_question(world, task, harness, claimed):
    harness.interrupt(task.public_id, claimed["run_id"])
    response = world.person().post(url(task, "cancel"))
    assert response.status_code == 200
    assert response.json()["open_question"] is None
    interrupt = Interrupt.objects.get(task=task)
    assert interrupt.withdrawn_at is not None
    assert interrupt.answered_at is None and interrupt.answer is None
    problem(
        world.person().post(f"/api/tasks/{task.public_id}/answer", {"answer": "x"}),
        409,
        "task_not_paused",
    )


# --- release --------------------------------------------------------------------------


def test_release_ends_live_run_and_puts_task_back_to_ready(world, task, claimed):
    response = world.person().post(url(task, "release"))
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "ready"
    assert body["live_run"] is None
    run = Run.objects.get(public_id=claimed["run_id"])
    assert run.status == RunStatus.RELEASED
    assert run.released_by == world.user
    assert run.ended_at is not None
    assert status_of(task) == TaskStatus.READY
    release = Event.objects.get(task=task, name="task.timeline", payload__kind="release")
    assert release.payload["actor"] == {"type": "user", "username": "alice"}
    assert "alice" in release.payload["summary"]
    assert release.payload["run_id"] == claimed["run_id"]
    assert release.payload["app_id"] == "builder"
    assert timeline_kinds(task) == ["created", "claim", "release"]


def test_another_app_can_claim_right_after_release(world, task, claimed):
    world.person().post(url(task, "release"))
    response = world.rival_harness().claim(task.public_id)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["run_id"] != claimed["run_id"]
    assert body["lease_epoch"] == claimed["lease_epoch"] + 1
    live = Run.objects.get(task=task, status=RunStatus.LIVE)
    assert live.public_id == body["run_id"] and live.app == world.rival
    assert status_of(task) == TaskStatus.IN_PROGRESS


def test_release_without_live_run_is_409_no_live_run(world, task):
    problem(world.person().post(url(task, "release")), 409, "no_live_run")
    assert status_of(task) == TaskStatus.READY
    assert timeline_kinds(task) == ["created"]


def test_release_after_lease_expired_is_409_no_live_run(world, task, claimed):
    later = timezone.now() + timedelta(seconds=settings.ETHER_LEASE_SECONDS + 1)
    with time_machine.travel(later, tick=False):
        problem(world.person().post(url(task, "release")), 409, "no_live_run")
    run = Run.objects.get(public_id=claimed["run_id"])
    assert run.status == RunStatus.EXPIRED and run.released_by is None
    assert status_of(task) == TaskStatus.READY
    assert "release" not in timeline_kinds(task)


def test_release_twice_is_409_no_live_run(world, task, claimed):
    person = world.person()
    assert person.post(url(task, "release")).status_code == 200
    problem(person.post(url(task, "release")), 409, "no_live_run")
    assert timeline_kinds(task).count("release") == 1


def test_release_closed_task_is_409_task_closed(world, task, harness, claimed):
    harness.result(task.public_id, claimed["run_id"])
    problem(world.person().post(url(task, "release")), 409, "task_closed")
    assert Run.objects.get(public_id=claimed["run_id"]).status == RunStatus.FINISHED
    assert status_of(task) == TaskStatus.NO_CHANGES


# --- shared refusals ------------------------------------------------------------------


@pytest.mark.parametrize("route", ROUTES)
def test_transitions_refuse_unknown_fields_with_400(world, task, claimed, route):
    body = problem(world.person().post(url(task, route), {"force": True}), 400, "validation_error")
    assert body["errors"] == {"force": ["Unknown field."]}
    assert status_of(task) == TaskStatus.IN_PROGRESS
    assert Run.objects.get(public_id=claimed["run_id"]).status == RunStatus.LIVE
    assert timeline_kinds(task) == ["created", "claim"]


@pytest.mark.parametrize("route", ROUTES)
def test_transitions_refuse_malformed_json_with_400(world, task, claimed, route):
    problem(world.person().post(url(task, route), raw="{nope"), 400, "malformed_json")
    assert status_of(task) == TaskStatus.IN_PROGRESS
    assert timeline_kinds(task) == ["created", "claim"]


@pytest.mark.parametrize("route", ROUTES)
def test_transitions_without_valid_token_are_401(world, task, claimed, route):
    for caller in (Caller(None), Caller("eth_pat_wrong"), Caller(world.key)):
        problem(caller.post(url(task, route)), 401, "not_authenticated")
    assert status_of(task) == TaskStatus.IN_PROGRESS
    assert Run.objects.get(public_id=claimed["run_id"]).status == RunStatus.LIVE
    assert timeline_kinds(task) == ["created", "claim"]


@pytest.mark.parametrize("route", ROUTES)
def test_transitions_on_other_org_unknown_or_malformed_task_are_404(world, task, claimed, route):
    problem(world.outsider().post(url(task, route)), 404, "not_found")
    person = world.person()
    problem(person.post(f"/api/tasks/task_{'0' * 32}/{route}"), 404, "not_found")
    problem(person.post(f"/api/tasks/run_{'0' * 32}/{route}"), 404, "not_found")
    assert status_of(task) == TaskStatus.IN_PROGRESS
    assert Run.objects.get(public_id=claimed["run_id"]).status == RunStatus.LIVE
    assert timeline_kinds(task) == ["created", "claim"]


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("verb", ["GET", "PUT", "DELETE"])
def test_transitions_other_methods_are_405(world, task, claimed, route, verb):
    problem(world.person().method(verb, url(task, route)), 405, "method_not_allowed")
    assert status_of(task) == TaskStatus.IN_PROGRESS
    assert timeline_kinds(task) == ["created", "claim"]
