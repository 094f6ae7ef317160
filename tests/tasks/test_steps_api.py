"""POST /api/harness/tasks/{task_id}/steps (docs/contract.md §3, §5 os.harness.step)."""

from __future__ import annotations

import re
from typing import Any

from tasks.harnesses.keys import harness_app_revoke
from tasks.models import Event, Run, RunStatus, Step, TaskStatus
from tests.helpers import Harness, past_expiry, problem, stored

STEP_ID = re.compile(r"^step_[0-9a-f]{32}$")


def url(task: Any) -> str:
    return Harness.url(task.public_id, "steps")


def step_events(task: Any) -> list[Event]:
    return list(Event.objects.filter(task=task, name="os.harness.step").order_by("seq"))


# --- 201 ---------------------------------------------------------------------------------


def test_step_is_stored_and_emits_os_harness_step(task, harness, claimed):
    run_id = claimed["run_id"]
    response = harness.step(
        task.public_id,
        run_id,
        "Running the test suite",
        phase="testing",
        internal_label="pytest -x",
        client_step_id="c-1",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == {"step_id", "seq"}
    assert STEP_ID.match(body["step_id"])
    assert isinstance(body["seq"], int)
    step = Step.objects.get(public_id=body["step_id"])
    assert step.task == task
    assert step.run.public_id == run_id
    assert step.seq == body["seq"]
    assert step.phase == "testing"
    assert step.user_message == "Running the test suite"
    assert step.internal_label == "pytest -x"
    assert step.client_step_id == "c-1"
    [event] = step_events(task)
    assert event.topic == f"tasks/{task.public_id}"
    assert event.seq == body["seq"]
    assert event.payload["phase"] == "testing"
    assert event.payload["user_message"] == "Running the test suite"
    assert event.payload["internal_label"] == "pytest -x"
    assert event.payload["run_id"] == run_id
    assert event.payload["task_id"] == task.public_id
    kinds = [e.payload.get("kind") for e in Event.objects.filter(task=task, name="task.timeline")]
    assert kinds == ["created", "claim", "step"]
    task.refresh_from_db()
    assert task.status == TaskStatus.IN_PROGRESS
    assert Run.objects.get(public_id=run_id).status == RunStatus.LIVE


def test_step_without_internal_label_stores_an_empty_one(task, harness, claimed):
    response = harness.step(task.public_id, claimed["run_id"], "Reading the code")
    assert response.status_code == 201, response.content
    step = Step.objects.get(public_id=response.json()["step_id"])
    assert step.internal_label == ""
    assert step.client_step_id is None
    [event] = step_events(task)
    assert event.payload["internal_label"] == ""
    assert event.payload["phase"] == "coding_agent"


def test_steps_get_increasing_seq(task, harness, claimed):
    run_id = claimed["run_id"]
    seqs = []
    for message in ("one", "two", "three"):
        response = harness.step(task.public_id, run_id, message)
        assert response.status_code == 201
        seqs.append(response.json()["seq"])
    assert seqs == sorted(seqs) and len(set(seqs)) == 3
    assert [s.user_message for s in Step.objects.filter(task=task).order_by("seq")] == [
        "one",
        "two",
        "three",
    ]
    assert [e.seq for e in step_events(task)] == seqs


def test_repeated_client_step_id_is_stored_once(task, harness, claimed):
    run_id = claimed["run_id"]
    first = harness.step(task.public_id, run_id, "Pushing", client_step_id="push-1")
    assert first.status_code == 201, first.content
    before = stored()
    again = harness.step(task.public_id, run_id, "Pushing", client_step_id="push-1")
    assert again.status_code == 201, again.content
    assert again.json() == first.json()
    retold = harness.step(task.public_id, run_id, "Pushing (retry)", client_step_id="push-1")
    assert retold.status_code == 201, retold.content
    assert retold.json() == first.json()
    assert stored() == before
    step = Step.objects.get(task=task)
    assert step.public_id == first.json()["step_id"] and step.user_message == "Pushing"
    assert len(step_events(task)) == 1


def test_same_client_step_id_in_a_new_run_is_a_new_step(world, task, harness, claimed):
    old = harness.step(task.public_id, claimed["run_id"], "Old run", client_step_id="s-1")
    assert old.status_code == 201
    with past_expiry(claimed["run_id"]):
        rival = world.rival_harness()
        new_run = rival.claim(task.public_id).json()["run_id"]
        response = rival.step(task.public_id, new_run, "New run", client_step_id="s-1")
    assert response.status_code == 201, response.content
    assert response.json()["step_id"] != old.json()["step_id"]
    assert response.json()["seq"] > old.json()["seq"]
    assert Step.objects.filter(task=task, client_step_id="s-1").count() == 2
    assert Step.objects.get(public_id=response.json()["step_id"]).run.public_id == new_run


# --- 400 ---------------------------------------------------------------------------------


def test_step_validation_errors_are_400(task, harness, claimed):
    run_id = claimed["run_id"]
    tid = task.public_id
    before = stored()
    problem(harness.post(url(task), raw="{nope"), 400, "malformed_json")
    problem(harness.post(url(task), raw="[1,2]"), 400, "validation_error")
    body = problem(harness.post(url(task), {}), 400, "validation_error")
    assert {"run_id", "phase", "user_message"} <= set(body["errors"])
    body = problem(
        harness.post(url(task), {"run_id": run_id, "user_message": "hi"}), 400, "validation_error"
    )
    assert list(body["errors"]) == ["phase"]
    body = problem(
        harness.post(url(task), {"run_id": run_id, "phase": "coding_agent"}),
        400,
        "validation_error",
    )
    assert list(body["errors"]) == ["user_message"]
    body = problem(harness.step(tid, 7), 400, "validation_error")
    assert body["errors"]["run_id"] == ["Must be a string."]
    body = problem(harness.step(tid, run_id, 42), 400, "validation_error")
    assert body["errors"]["user_message"] == ["Must be a string."]
    body = problem(harness.step(tid, run_id, phase=3), 400, "validation_error")
    assert body["errors"]["phase"] == ["Must be a string."]
    body = problem(harness.step(tid, run_id, internal_label=["x"]), 400, "validation_error")
    assert body["errors"]["internal_label"] == ["Must be a string."]
    body = problem(harness.step(tid, run_id, client_step_id=1), 400, "validation_error")
    assert body["errors"]["client_step_id"] == ["Must be a string."]
    body = problem(harness.step(tid, run_id, lease_epoch="1"), 400, "validation_error")
    assert body["errors"]["lease_epoch"] == ["Must be an integer."]
    for bad in ("run_123", "step_" + "0" * 32, "run_" + "A" * 32):
        body = problem(harness.step(tid, bad), 400, "validation_error")
        assert list(body["errors"]) == ["run_id"], bad
    body = problem(harness.step(tid, run_id, extra=1), 400, "validation_error")
    assert body["errors"] == {"extra": ["Unknown field."]}
    assert stored() == before


def test_step_body_that_is_not_json_is_415(task, harness, claimed):
    before = stored()
    response = harness.post(url(task), raw="phase=x", content_type="text/plain")
    problem(response, 415, "unsupported_media_type")
    assert stored() == before


# --- 401 / 403 / 404 / 405 ---------------------------------------------------------------


def test_step_auth_failures_are_401(world, task, claimed):
    run_id = claimed["run_id"]
    before = stored()
    response = Harness("", world.app.app_id).step(task.public_id, run_id)
    problem(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"].startswith("Bearer")
    problem(
        Harness("eth_app_wrong", world.app.app_id).step(task.public_id, run_id),
        401,
        "not_authenticated",
    )
    problem(
        Harness(world.token, world.app.app_id).step(task.public_id, run_id),
        401,
        "not_authenticated",
    )
    assert stored() == before
    harness_app_revoke(org=world.org, app_id=world.app.app_id)
    before = stored()
    response = world.harness().step(task.public_id, run_id)
    assert "revoked" in problem(response, 401, "not_authenticated")["detail"]
    assert stored() == before


def test_step_unknown_other_org_and_malformed_task_ids_are_404(world, task, harness, claimed):
    run_id = claimed["run_id"]
    before = stored()
    problem(harness.step("task_" + "0" * 32, run_id), 404, "not_found")
    problem(harness.step("task_nothex", run_id), 404, "not_found")
    problem(world.outsider_harness().step(task.public_id, run_id), 404, "not_found")
    assert stored() == before


def test_step_get_is_405(task, harness, claimed):
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


def test_step_body_over_the_limit_is_413(settings, task, harness, claimed):
    settings.ETHER_MAX_BODY_BYTES = 2048
    before = stored()
    response = harness.step(task.public_id, claimed["run_id"], "x" * 3000)
    problem(response, 413, "payload_too_large")
    assert stored() == before
