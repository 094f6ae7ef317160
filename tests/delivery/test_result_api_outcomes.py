"""POST /api/harness/tasks/{task_id}/result (docs/contract.md §3) and the judge's scope rule."""

from __future__ import annotations

from typing import Any

import pytest

from tasks.models import (
    Event,
    Interrupt,
    Result,
    ResultStatus,
    Run,
    RunStatus,
    TaskStatus,
)
from tests.delivery import result_support
from tests.delivery.result_support import INT_ID, parse, pr, timeline_kinds
from tests.helpers import problem, stored

# The shared fixtures, bound here so that pytest finds them for this module's tests.
task = result_support.task


# --- 200: the three outcomes ---------------------------------------------------------------


def test_submitted_result_completes_the_task_and_ends_the_run(world, task, harness, claimed):
    run_id = claimed["run_id"]
    artifact = {"pr": pr(task), "commit": "0123abcd"}
    response = harness.result(
        task.public_id,
        run_id,
        "submitted",
        agent_status="PR opened, CI green",
        artifact=artifact,
        working_summary="## Done\n- made test_widget deterministic",
    )
    assert response.status_code == 200, response.content
    body = dict(response.json())
    finished_at = parse(body.pop("finished_at"))
    assert body == {
        "run_id": run_id,
        "task_id": task.public_id,
        "status": "submitted",
        "task_status": "completed",
        "interrupt_id": None,
    }
    result = Result.objects.get(task=task)
    assert result.run.public_id == run_id
    assert result.status == ResultStatus.SUBMITTED
    assert result.agent_status == "PR opened, CI green"
    assert result.artifact == artifact
    assert result.working_summary == "## Done\n- made test_widget deterministic"
    run = Run.objects.get(public_id=run_id)
    assert run.status == RunStatus.FINISHED
    assert run.ended_at == finished_at
    task.refresh_from_db()
    assert task.status == TaskStatus.COMPLETED
    assert timeline_kinds(task) == ["created", "claim", "result"]
    detail = world.person().get(f"/api/tasks/{task.public_id}").json()
    assert detail["status"] == "completed" and detail["live_run"] is None


def test_submitted_result_without_artifact_completes_the_task(task, harness, claimed):
    response = harness.result(task.public_id, claimed["run_id"], "submitted")
    assert response.status_code == 200, response.content
    assert response.json()["task_status"] == "completed"
    assert Result.objects.get(task=task).artifact is None
    task.refresh_from_db()
    assert task.status == TaskStatus.COMPLETED


def test_blocked_result_pauses_the_task_with_an_open_question(world, task, harness, claimed):
    run_id = claimed["run_id"]
    response = harness.result(
        task.public_id, run_id, "blocked", question="May I change the public API?"
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "blocked" and body["task_status"] == "paused"
    assert INT_ID.match(body["interrupt_id"])
    interrupt = Interrupt.objects.get(task=task)
    assert interrupt.public_id == body["interrupt_id"]
    assert interrupt.source == "result"
    assert interrupt.question == "May I change the public API?"
    assert interrupt.run.public_id == run_id
    assert interrupt.answered_at is None
    result = Result.objects.get(task=task)
    assert result.status == ResultStatus.BLOCKED
    assert result.question == "May I change the public API?"
    assert Run.objects.get(public_id=run_id).status == RunStatus.FINISHED
    task.refresh_from_db()
    assert task.status == TaskStatus.PAUSED
    [event] = Event.objects.filter(task=task, name="task.interrupted")
    assert event.payload["question"] == "May I change the public API?"


def test_answer_to_a_blocked_result_reaches_the_next_claim(world, task, harness, claimed):
    run_id = claimed["run_id"]
    blocked = harness.result(
        task.public_id, run_id, "blocked", question="May I change the public API?"
    )
    assert blocked.status_code == 200, blocked.content
    # The run is over, so the answer sends the task back to ready for the next claim.
    answered = world.person().post(f"/api/tasks/{task.public_id}/answer", {"answer": "Yes"})
    assert answered.status_code == 200, answered.content
    task.refresh_from_db()
    assert task.status == TaskStatus.READY
    claim = harness.claim(task.public_id)
    assert claim.status_code == 200, claim.content
    assert claim.json()["run_id"] != run_id
    [question] = claim.json()["bundle"]["questions"]
    assert question["source"] == "result"
    assert question["question"] == "May I change the public API?"
    assert question["answer"] == "Yes"


def test_no_changes_result_closes_the_task_as_no_changes(task, harness, claimed):
    run_id = claimed["run_id"]
    response = harness.result(
        task.public_id,
        run_id,
        "no_changes",
        no_changes_reason="Already fixed upstream.",
        working_summary="Checked main: the test is already deterministic.",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "no_changes"
    assert body["task_status"] == "no_changes"
    assert body["interrupt_id"] is None
    result = Result.objects.get(task=task)
    assert result.status == ResultStatus.NO_CHANGES
    assert result.no_changes_reason == "Already fixed upstream."
    assert result.working_summary == "Checked main: the test is already deterministic."
    assert Run.objects.get(public_id=run_id).status == RunStatus.FINISHED
    task.refresh_from_db()
    assert task.status == TaskStatus.NO_CHANGES
    assert not Interrupt.objects.exists()


def test_any_result_ends_the_run_so_it_can_write_no_more(task, harness, claimed):
    run_id = claimed["run_id"]
    assert harness.result(task.public_id, run_id, "blocked").status_code == 200
    before = stored()
    problem(harness.heartbeat(task.public_id, run_id), 409, "lease_lost")
    problem(harness.step(task.public_id, run_id), 409, "lease_lost")
    assert stored() == before
    run = Run.objects.get(public_id=run_id)
    assert run.status == RunStatus.FINISHED and run.ended_at is not None


# --- Retries and run_finished -------------------------------------------------------------


@pytest.mark.parametrize("status", ["submitted", "blocked", "no_changes"])
def test_identical_result_again_answers_the_same_and_stores_nothing(task, harness, claimed, status):
    run_id = claimed["run_id"]
    extra: dict[str, Any] = {"working_summary": "summary"}
    if status == "submitted":
        extra["artifact"] = {"pr": pr(task)}
    first = harness.result(task.public_id, run_id, status, **extra)
    assert first.status_code == 200, first.content
    before = stored()
    again = harness.result(task.public_id, run_id, status, **extra)
    assert again.status_code == 200, again.content
    assert again.json() == first.json()
    assert stored() == before
    assert Result.objects.filter(task=task).count() == 1
    assert timeline_kinds(task).count("result") == 1


def test_a_retry_answers_the_task_status_of_the_first_answer(world, task, harness, claimed):
    first = harness.result(
        task.public_id, claimed["run_id"], "submitted", artifact={"pr": pr(task)}
    )
    assert first.status_code == 200, first.content
    assert first.json()["task_status"] == TaskStatus.COMPLETED
    reopened = world.person().post(f"/api/tasks/{task.public_id}/reopen")
    assert reopened.status_code == 200, reopened.content
    again = harness.result(
        task.public_id, claimed["run_id"], "submitted", artifact={"pr": pr(task)}
    )
    assert again.json() == first.json()
    task.refresh_from_db()
    assert task.status == TaskStatus.READY


def test_identical_result_with_the_current_epoch_is_still_a_retry(task, harness, claimed):
    run_id = claimed["run_id"]
    first = harness.result(task.public_id, run_id, lease_epoch=1)
    assert first.status_code == 200, first.content
    before = stored()
    again = harness.result(task.public_id, run_id, lease_epoch=1)
    assert again.status_code == 200, again.content
    assert again.json() == first.json()
    assert stored() == before


def test_different_result_for_a_finished_run_is_409_run_finished(task, harness, claimed):
    run_id = claimed["run_id"]
    first = harness.result(
        task.public_id, run_id, "no_changes", no_changes_reason="Already fixed upstream."
    )
    assert first.status_code == 200, first.content
    before = stored()
    problem(harness.result(task.public_id, run_id, "submitted"), 409, "run_finished")
    problem(
        harness.result(task.public_id, run_id, "no_changes", no_changes_reason="Other reason"),
        409,
        "run_finished",
    )
    problem(
        harness.result(task.public_id, run_id, "no_changes", working_summary="more"),
        409,
        "run_finished",
    )
    assert stored() == before
    result = Result.objects.get(task=task)
    assert result.status == ResultStatus.NO_CHANGES
    assert result.no_changes_reason == "Already fixed upstream."
    task.refresh_from_db()
    assert task.status == TaskStatus.NO_CHANGES
