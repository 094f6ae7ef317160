from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.conf import settings
from django.utils import timezone

from tasks.models import Event, Interrupt, Run, RunStatus, Task, TaskStatus
from tests.helpers import Caller, problem


def answer_url(task) -> str:
    return f"/api/tasks/{task.public_id}/answer"


def timeline_kinds(task) -> list[str]:
    rows = Event.objects.filter(task=task, name="task.timeline").order_by("seq")
    return [e.payload["kind"] for e in rows]


@pytest.fixture
def paused(world, task, harness, claimed):
    """The claimed task, paused on a question by ``builder``: the interrupt's body."""
    response = harness.interrupt(
        task.public_id, claimed["run_id"], question="Which DB?", choices=["SQLite", "Postgres"]
    )
    assert response.status_code == 200, response.content
    return response.json()


def test_answer_resumes_task_under_live_lease(world, task, harness, claimed, paused):
    response = world.person().post(answer_url(task), {"answer": "Postgres"})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["id"] == task.public_id
    assert body["status"] == "in_progress"
    assert body["open_question"] is None
    assert body["live_run"]["run_id"] == claimed["run_id"]
    interrupt = Interrupt.objects.get(public_id=paused["interrupt_id"])
    assert interrupt.answer == "Postgres"
    assert interrupt.answered_by == world.user
    assert interrupt.answered_at is not None
    task.refresh_from_db()
    assert task.status == TaskStatus.IN_PROGRESS
    run = Run.objects.get(public_id=claimed["run_id"])
    assert run.status == RunStatus.LIVE
    assert timeline_kinds(task) == ["created", "claim", "interrupt", "answer"]
    answer_event = Event.objects.get(task=task, name="task.timeline", payload__kind="answer")
    assert answer_event.payload["actor"] == {"type": "user", "username": "alice"}
    assert answer_event.payload["interrupt_id"] == paused["interrupt_id"]
    assert answer_event.payload["run_id"] == claimed["run_id"]


def test_next_heartbeat_returns_the_answer(world, task, harness, claimed, paused):
    world.person().post(answer_url(task), {"answer": "Postgres"})
    beat = harness.heartbeat(task.public_id, claimed["run_id"])
    assert beat.status_code == 200
    body = beat.json()
    assert body["task_status"] == "in_progress"
    assert [(a["interrupt_id"], a["question"], a["answer"]) for a in body["answers"]] == [
        (paused["interrupt_id"], "Which DB?", "Postgres")
    ]
    assert body["answers"][0]["answered_by"] == "alice"


def test_open_question_shows_on_the_paused_task(world, task, paused):
    body = world.person().get(f"/api/tasks/{task.public_id}").json()
    assert body["status"] == "paused"
    assert body["open_question"]["interrupt_id"] == paused["interrupt_id"]
    assert body["open_question"]["question"] == "Which DB?"
    assert body["open_question"]["choices"] == ["SQLite", "Postgres"]
    assert body["open_question"]["answer"] is None


def test_answer_after_lease_expired_puts_task_back_to_ready(world, task, claimed, paused):
    later = timezone.now() + timedelta(seconds=settings.ETHER_LEASE_SECONDS + 5)
    with time_machine.travel(later, tick=False):
        response = world.person().post(answer_url(task), {"answer": "SQLite"})
        assert response.status_code == 200, response.content
        body = response.json()
        assert body["status"] == "ready"
        assert body["live_run"] is None
        assert body["open_question"] is None
        task.refresh_from_db()
        assert task.status == TaskStatus.READY
        assert Run.objects.get(public_id=claimed["run_id"]).status == RunStatus.EXPIRED
        assert Interrupt.objects.get(public_id=paused["interrupt_id"]).answer == "SQLite"
        assert timeline_kinds(task) == ["created", "claim", "interrupt", "lease_expired", "answer"]


def test_answer_after_lease_expired_reaches_the_next_claim(world, task, claimed, paused):
    later = timezone.now() + timedelta(seconds=settings.ETHER_LEASE_SECONDS + 5)
    with time_machine.travel(later, tick=False):
        answered = world.person().post(answer_url(task), {"answer": "SQLite"})
        assert answered.status_code == 200, answered.content
        claim = world.rival_harness().claim(task.public_id)
        assert claim.status_code == 200, claim.content
        new = claim.json()
        assert new["run_id"] != claimed["run_id"]
        questions = new["bundle"]["questions"]
        assert len(questions) == 1
        assert questions[0]["interrupt_id"] == paused["interrupt_id"]
        assert questions[0]["question"] == "Which DB?"
        assert questions[0]["choices"] == ["SQLite", "Postgres"]
        assert questions[0]["answer"] == "SQLite"
        assert questions[0]["answered_by"] == world.user.username
        assert questions[0]["run_id"] == claimed["run_id"]


def test_old_run_cannot_write_after_lease_expired_and_answered(
    world, task, harness, claimed, paused
):
    later = timezone.now() + timedelta(seconds=settings.ETHER_LEASE_SECONDS + 5)
    with time_machine.travel(later, tick=False):
        world.person().post(answer_url(task), {"answer": "SQLite"})
        problem(harness.heartbeat(task.public_id, claimed["run_id"]), 409, "lease_lost")
        problem(harness.step(task.public_id, claimed["run_id"]), 409, "lease_lost")
    assert Task.objects.get(pk=task.pk).status == TaskStatus.READY
    assert not Event.objects.filter(task=task, name="os.harness.step").exists()


def test_answer_to_blocked_result_puts_task_back_to_ready(world, task, harness, claimed):
    response = harness.result(task.public_id, claimed["run_id"], status="blocked")
    assert response.status_code == 200, response.content
    reply = world.person().post(answer_url(task), {"answer": "Target main."})
    assert reply.status_code == 200
    assert reply.json()["status"] == "ready"
    interrupt = Interrupt.objects.get(task=task)
    assert interrupt.source == "result"
    assert interrupt.answer == "Target main."
    assert Task.objects.get(pk=task.pk).status == TaskStatus.READY


def test_answer_on_task_without_open_question_is_409_task_not_paused(world, task, claimed):
    person = world.person()
    body = problem(person.post(answer_url(task), {"answer": "Postgres"}), 409, "task_not_paused")
    assert "in_progress" in body["detail"]
    assert Task.objects.get(pk=task.pk).status == TaskStatus.IN_PROGRESS
    assert not Interrupt.objects.exists()
    assert timeline_kinds(task) == ["created", "claim"]


def test_answer_on_ready_task_is_409_task_not_paused(world, task):
    problem(world.person().post(answer_url(task), {"answer": "x"}), 409, "task_not_paused")
    assert Task.objects.get(pk=task.pk).status == TaskStatus.READY
    assert timeline_kinds(task) == ["created"]


def test_answering_twice_is_409_task_not_paused(world, task, paused):
    person = world.person()
    assert person.post(answer_url(task), {"answer": "Postgres"}).status_code == 200
    problem(person.post(answer_url(task), {"answer": "SQLite"}), 409, "task_not_paused")
    assert Interrupt.objects.get(public_id=paused["interrupt_id"]).answer == "Postgres"
    assert timeline_kinds(task).count("answer") == 1


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "answer"),
        ({"answer": 42}, "answer"),
        ({"answer": None}, "answer"),
        ({"answer": ""}, "answer"),
        ({"answer": "x" * 4001}, "answer"),
        ({"answer": "Postgres", "note": "hi"}, "note"),
    ],
)
def test_answer_validation_errors_are_400(world, task, paused, payload, field):
    body = problem(world.person().post(answer_url(task), payload), 400, "validation_error")
    assert field in body["errors"]
    assert Task.objects.get(pk=task.pk).status == TaskStatus.PAUSED
    assert Interrupt.objects.get(public_id=paused["interrupt_id"]).answered_at is None
    assert "answer" not in timeline_kinds(task)


def test_answer_malformed_json_is_400_and_form_body_is_415(world, task, paused):
    person = world.person()
    problem(person.post(answer_url(task), raw="{nope"), 400, "malformed_json")
    problem(person.post(answer_url(task), raw="[]"), 400, "validation_error")
    problem(
        person.post(answer_url(task), raw="answer=x", content_type="text/plain"),
        415,
        "unsupported_media_type",
    )
    assert Interrupt.objects.get(public_id=paused["interrupt_id"]).answered_at is None


def test_answer_without_valid_token_is_401(world, task, paused):
    for caller in (Caller(None), Caller("eth_pat_wrong"), Caller(world.key)):
        problem(caller.post(answer_url(task), {"answer": "x"}), 401, "not_authenticated")
    assert Interrupt.objects.get(public_id=paused["interrupt_id"]).answered_at is None
    assert Task.objects.get(pk=task.pk).status == TaskStatus.PAUSED


def test_answer_other_org_unknown_or_malformed_task_is_404(world, task, paused):
    problem(world.outsider().post(answer_url(task), {"answer": "x"}), 404, "not_found")
    person = world.person()
    problem(
        person.post("/api/tasks/task_" + "0" * 32 + "/answer", {"answer": "x"}), 404, "not_found"
    )
    problem(person.post("/api/tasks/nope/answer", {"answer": "x"}), 404, "not_found")
    assert Interrupt.objects.get(public_id=paused["interrupt_id"]).answered_at is None
    assert Task.objects.get(pk=task.pk).status == TaskStatus.PAUSED


@pytest.mark.parametrize("verb", ["GET", "PUT", "DELETE"])
def test_answer_other_methods_are_405(world, task, paused, verb):
    problem(world.person().method(verb, answer_url(task)), 405, "method_not_allowed")
    assert Interrupt.objects.get(public_id=paused["interrupt_id"]).answered_at is None
