"""POST /api/harness/tasks/{task_id}/interrupt (docs/contract.md §3, §5 task.interrupted)."""

from __future__ import annotations

import re
from typing import Any

from tasks.harnesses.keys import harness_app_revoke
from tasks.models import Event, Interrupt, Run, RunStatus, TaskStatus
from tests.helpers import Harness, past_expiry, problem, stored

INT_ID = re.compile(r"^int_[0-9a-f]{32}$")


def url(task: Any) -> str:
    return Harness.url(task.public_id, "interrupt")


# --- 200 ---------------------------------------------------------------------------------


def test_interrupt_pauses_the_task_and_stores_the_question(task, harness, claimed):
    run_id = claimed["run_id"]
    lease_before = Run.objects.get(public_id=run_id).lease_expires_at
    response = harness.interrupt(
        task.public_id, run_id, "Which DB should I use?", choices=["sqlite", "postgres"]
    )
    assert response.status_code == 200, response.content
    body = dict(response.json())
    interrupt_id = body.pop("interrupt_id")
    assert INT_ID.match(interrupt_id)
    assert body == {
        "run_id": run_id,
        "task_status": "paused",
        "question": "Which DB should I use?",
        "choices": ["sqlite", "postgres"],
        "allow_free_text": False,
    }
    interrupt = Interrupt.objects.get(task=task)
    assert interrupt.public_id == interrupt_id
    assert interrupt.run.public_id == run_id
    assert interrupt.source == "interrupt"
    assert interrupt.question == "Which DB should I use?"
    assert interrupt.choices == ["sqlite", "postgres"]
    assert interrupt.answer is None and interrupt.answered_at is None
    task.refresh_from_db()
    assert task.status == TaskStatus.PAUSED
    run = Run.objects.get(public_id=run_id)
    assert run.status == RunStatus.LIVE
    assert run.lease_expires_at == lease_before
    [event] = Event.objects.filter(task=task, name="task.interrupted")
    assert event.payload["question"] == "Which DB should I use?"
    assert event.payload["choices"] == ["sqlite", "postgres"]
    assert event.payload["run_id"] == run_id


def test_interrupt_without_choices_stores_an_empty_list(world, task, harness, claimed):
    response = harness.interrupt(task.public_id, claimed["run_id"], "Proceed?")
    assert response.status_code == 200, response.content
    assert response.json()["choices"] == []
    assert Interrupt.objects.get(task=task).choices == []
    detail = world.person().get(f"/api/tasks/{task.public_id}").json()
    assert detail["status"] == "paused"
    assert detail["open_question"]["question"] == "Proceed?"


def test_answered_interrupt_resumes_the_task_and_allows_another(world, task, harness, claimed):
    run_id = claimed["run_id"]
    assert harness.interrupt(task.public_id, run_id, "First?").status_code == 200
    answered = world.person().post(f"/api/tasks/{task.public_id}/answer", {"answer": "yes"})
    assert answered.status_code == 200, answered.content
    task.refresh_from_db()
    assert task.status == TaskStatus.IN_PROGRESS
    response = harness.interrupt(task.public_id, run_id, "Second?")
    assert response.status_code == 200, response.content
    assert [i.question for i in Interrupt.objects.filter(task=task).order_by("pk")] == [
        "First?",
        "Second?",
    ]
    task.refresh_from_db()
    assert task.status == TaskStatus.PAUSED


def test_answer_after_the_lease_expired_sends_the_task_to_ready_with_the_answer(
    world, task, harness, claimed
):
    run_id = claimed["run_id"]
    assert harness.interrupt(task.public_id, run_id, "Which DB?").status_code == 200
    with past_expiry(run_id):
        answered = world.person().post(f"/api/tasks/{task.public_id}/answer", {"answer": "pg"})
        assert answered.status_code == 200, answered.content
        task.refresh_from_db()
        assert task.status == TaskStatus.READY
        claim = world.rival_harness().claim(task.public_id)
    assert claim.status_code == 200, claim.content
    [question] = claim.json()["bundle"]["questions"]
    assert question["question"] == "Which DB?" and question["answer"] == "pg"
    assert Run.objects.get(public_id=run_id).status == RunStatus.EXPIRED


# --- 400 ---------------------------------------------------------------------------------


def test_interrupt_validation_errors_are_400(task, harness, claimed):
    run_id = claimed["run_id"]
    tid = task.public_id
    before = stored()
    problem(harness.post(url(task), raw="{nope"), 400, "malformed_json")
    problem(harness.post(url(task), raw="[1,2]"), 400, "validation_error")
    body = problem(harness.post(url(task), {}), 400, "validation_error")
    assert {"run_id", "question"} <= set(body["errors"])
    body = problem(harness.post(url(task), {"run_id": run_id}), 400, "validation_error")
    assert list(body["errors"]) == ["question"]
    body = problem(harness.interrupt(tid, run_id, 42), 400, "validation_error")
    assert body["errors"]["question"] == ["Must be a string."]
    body = problem(harness.interrupt(tid, 7), 400, "validation_error")
    assert body["errors"]["run_id"] == ["Must be a string."]
    body = problem(harness.interrupt(tid, run_id, choices="a,b"), 400, "validation_error")
    assert "choices" in body["errors"]
    body = problem(harness.interrupt(tid, run_id, choices=["a", 2]), 400, "validation_error")
    assert any(name.startswith("choices") for name in body["errors"]), body["errors"]
    body = problem(harness.interrupt(tid, run_id, lease_epoch=1.5), 400, "validation_error")
    assert body["errors"]["lease_epoch"] == ["Must be an integer."]
    for bad in ("run_123", "int_" + "0" * 32, "run_" + "A" * 32):
        body = problem(harness.interrupt(tid, bad), 400, "validation_error")
        assert list(body["errors"]) == ["run_id"], bad
    body = problem(harness.interrupt(tid, run_id, extra=1), 400, "validation_error")
    assert body["errors"] == {"extra": ["Unknown field."]}
    assert stored() == before
    task.refresh_from_db()
    assert task.status == TaskStatus.IN_PROGRESS


def test_interrupt_body_that_is_not_json_is_415(task, harness, claimed):
    before = stored()
    response = harness.post(url(task), raw="question=x", content_type="text/plain")
    problem(response, 415, "unsupported_media_type")
    assert stored() == before


# --- 401 / 403 / 404 / 405 ---------------------------------------------------------------


def test_interrupt_auth_failures_are_401(world, task, claimed):
    run_id = claimed["run_id"]
    before = stored()
    response = Harness("", world.app.app_id).interrupt(task.public_id, run_id)
    problem(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"].startswith("Bearer")
    problem(
        Harness("eth_app_wrong", world.app.app_id).interrupt(task.public_id, run_id),
        401,
        "not_authenticated",
    )
    problem(
        Harness(world.token, world.app.app_id).interrupt(task.public_id, run_id),
        401,
        "not_authenticated",
    )
    assert stored() == before
    harness_app_revoke(org=world.org, app_id=world.app.app_id)
    before = stored()
    response = world.harness().interrupt(task.public_id, run_id)
    assert "revoked" in problem(response, 401, "not_authenticated")["detail"]
    assert stored() == before


def test_interrupt_unknown_other_org_and_malformed_task_ids_are_404(world, task, harness, claimed):
    run_id = claimed["run_id"]
    before = stored()
    problem(harness.interrupt("task_" + "0" * 32, run_id), 404, "not_found")
    problem(harness.interrupt("task_nothex", run_id), 404, "not_found")
    problem(world.outsider_harness().interrupt(task.public_id, run_id), 404, "not_found")
    assert stored() == before


def test_interrupt_get_is_405(task, harness, claimed):
    before = stored()
    response = harness.get(url(task))
    problem(response, 405, "method_not_allowed")
    assert "POST" in response["Allow"]
    assert stored() == before


# --- 409 ---------------------------------------------------------------------------------


def test_interrupt_while_a_question_is_open_is_409_task_paused(task, harness, claimed):
    run_id = claimed["run_id"]
    assert harness.interrupt(task.public_id, run_id, "First?").status_code == 200
    before = stored()
    problem(harness.interrupt(task.public_id, run_id, "Second?"), 409, "task_paused")
    assert stored() == before
    assert [i.question for i in Interrupt.objects.filter(task=task)] == ["First?"]


# --- 409: fencing -----------------------------------------------------------------------
# Another app's run (403), another task's or an unknown run, an expired, released or
# finished run, a stale lease_epoch (409 lease_lost) and writes after a cancel (409
# task_closed) are tests/tasks/test_fencing.py, once for all four harness writes.


# --- 413 ---------------------------------------------------------------------------------


def test_interrupt_body_over_the_limit_is_413(settings, task, harness, claimed):
    settings.ETHER_MAX_BODY_BYTES = 2048
    before = stored()
    response = harness.interrupt(task.public_id, claimed["run_id"], "?" * 3000)
    problem(response, 413, "payload_too_large")
    assert stored() == before
