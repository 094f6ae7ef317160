from __future__ import annotations

import hashlib
import json
from datetime import timedelta

import time_machine
from django.utils import timezone

from api.models import IdempotencyRecord
from tasks.models import Event, Result, Run, RunStatus, Step, Task
from tests import factories
from tests.helpers import problem


def key(value: str) -> dict[str, str]:
    return {"HTTP_IDEMPOTENCY_KEY": value}


def body_of(response) -> object:
    """The JSON body, whatever Content-Type the replay claims (checked on its own below)."""
    return json.loads(response.content)


def fingerprint(path: str, body: dict) -> str:
    """What ``api.idempotency`` hashes: method, path and the canonical JSON body."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"POST {path}\n{canonical}".encode()).hexdigest()


def create_body(repo) -> dict:
    return {
        "title": "Add a health check",
        "prompt": "GET /healthz answers 200.",
        "definition_of_done": ["It answers 200"],
        "project": repo.project.slug,
        "repo": repo.full_name,
    }


# --- replays --------------------------------------------------------------------------


def test_claim_retry_with_same_key_replays_and_changes_nothing(world, task, harness):
    first = harness.claim(task.public_id, **key("claim-1"))
    assert first.status_code == 200
    assert not first.has_header("Idempotent-Replayed")
    task.refresh_from_db()
    epoch = task.lease_epoch
    events = Event.objects.count()
    again = harness.claim(task.public_id, **key("claim-1"))
    assert again.status_code == 200
    assert again["Idempotent-Replayed"] == "true"
    assert body_of(again) == first.json()
    assert Run.objects.filter(task=task).count() == 1
    task.refresh_from_db()
    assert task.lease_epoch == epoch == 1
    assert Event.objects.count() == events
    assert IdempotencyRecord.objects.count() == 1
    record = IdempotencyRecord.objects.get()
    assert record.scope == f"app:{world.app.pk}" and record.state == IdempotencyRecord.DONE


def test_claim_without_key_is_not_replayed(world, task, harness):
    first = harness.claim(task.public_id).json()
    second = harness.claim(task.public_id).json()
    assert second["lease_epoch"] == first["lease_epoch"] + 1
    assert not IdempotencyRecord.objects.exists()


def test_step_retry_with_same_key_is_stored_once(world, task, harness, claimed):
    url = harness.url(task.public_id, "steps")
    data = {"run_id": claimed["run_id"], "phase": "coding_agent", "user_message": "Working"}
    first = harness.post(url, data, **key("step-1"))
    assert first.status_code == 201
    events = Event.objects.count()
    again = harness.post(url, data, **key("step-1"))
    assert again.status_code == 201
    assert again["Idempotent-Replayed"] == "true"
    assert body_of(again) == first.json()
    assert Step.objects.count() == 1
    assert Event.objects.count() == events
    other = harness.post(url, data, **key("step-2"))
    assert other.status_code == 201
    assert other.json()["step_id"] != first.json()["step_id"]
    assert Step.objects.count() == 2


def test_create_task_retry_with_same_key_creates_one_task(world):
    repo = factories.make_repo(world.org, "acme/widgets")
    person = world.person()
    first = person.post("/api/tasks", create_body(repo), **key("create-1"))
    assert first.status_code == 201
    again = person.post("/api/tasks", create_body(repo), **key("create-1"))
    assert again.status_code == 201
    assert again["Idempotent-Replayed"] == "true"
    assert body_of(again) == first.json()
    assert Task.objects.count() == 1
    assert Event.objects.filter(name="task.timeline").count() == 1
    assert Event.objects.filter(name="activity.list_updated").count() == 1
    assert IdempotencyRecord.objects.get().scope == f"user:{world.user.pk}"


def test_cancel_retry_with_same_key_replays_success_instead_of_task_closed(world, task):
    person = world.person()
    url = f"/api/tasks/{task.public_id}/cancel"
    first = person.post(url, **key("cancel-1"))
    assert first.status_code == 200
    again = person.post(url, **key("cancel-1"))
    assert again.status_code == 200
    assert again["Idempotent-Replayed"] == "true"
    assert body_of(again) == first.json()
    assert Event.objects.filter(task=task, payload__kind="cancel").count() == 1
    problem(person.post(url, **key("cancel-2")), 409, "task_closed")


def test_same_key_with_another_body_is_422(world):
    repo = factories.make_repo(world.org, "acme/widgets")
    person = world.person()
    assert person.post("/api/tasks", create_body(repo), **key("create-1")).status_code == 201
    changed = {**create_body(repo), "title": "Something else"}
    body = problem(
        person.post("/api/tasks", changed, **key("create-1")), 422, "idempotency_key_reused"
    )
    assert "Idempotency-Key" in body["detail"]
    assert Task.objects.count() == 1
    assert Task.objects.get().title == "Add a health check"


def test_same_key_on_another_route_is_422(world, task, harness, claimed):
    url = harness.url(task.public_id, "heartbeat")
    assert harness.post(url, {"run_id": claimed["run_id"]}, **key("k")).status_code == 200
    steps = harness.url(task.public_id, "steps")
    data = {"run_id": claimed["run_id"], "phase": "coding_agent", "user_message": "Working"}
    problem(harness.post(steps, data, **key("k")), 422, "idempotency_key_reused")
    assert not Step.objects.exists()


def test_conflict_is_not_stored_so_a_retry_with_the_key_runs_again(world, task, claimed):
    """A 409 reports the task's state at that moment; Retry-After invites the same retry."""
    rival = world.rival_harness()
    first = rival.claim(task.public_id, **key("rival-claim"))
    problem(first, 409, "lease_held")
    assert int(first["Retry-After"]) >= 1
    assert not IdempotencyRecord.objects.filter(key="rival-claim").exists()
    assert world.person().post(f"/api/tasks/{task.public_id}/release").status_code == 200
    again = rival.claim(task.public_id, **key("rival-claim"))
    assert again.status_code == 200
    assert not again.has_header("Idempotent-Replayed")
    assert Run.objects.filter(task=task, app=world.rival, status=RunStatus.LIVE).count() == 1
    replay = rival.claim(task.public_id, **key("rival-claim"))
    assert replay["Idempotent-Replayed"] == "true"
    assert body_of(replay) == body_of(again)


def test_validation_refusal_is_replayed(world):
    person = world.person()
    first = person.post("/api/tasks", {"title": 5}, **key("bad-1"))
    refused = problem(first, 400, "validation_error")
    again = person.post("/api/tasks", {"title": 5}, **key("bad-1"))
    assert again.status_code == 400
    assert body_of(again) == refused
    assert again["Idempotent-Replayed"] == "true"
    assert not Task.objects.exists()


def test_replayed_answer_keeps_the_json_content_type(world, task, harness):
    first = harness.claim(task.public_id, **key("claim-1"))
    again = harness.claim(task.public_id, **key("claim-1"))
    assert again["Idempotent-Replayed"] == "true"
    assert again["Content-Type"] == first["Content-Type"] == "application/json"
    assert again.json() == first.json()
    assert Run.objects.count() == 1


def test_replayed_refusal_is_still_a_problem_document(world, task, harness, claimed):
    pr = {"number": 1, "branch": "main", "url": f"https://github.com/{task.repo.full_name}/pull/1"}
    data = {
        "run_id": claimed["run_id"],
        "status": "submitted",
        "agent_status": "Opened PR #1",
        "artifact": {"pr": pr},
    }
    url = harness.url(task.public_id, "result")
    refused = problem(harness.post(url, data, **key("out-of-scope")), 422, "out_of_scope")
    again = harness.post(url, data, **key("out-of-scope"))
    assert again["Idempotent-Replayed"] == "true"
    assert problem(again, 422, "out_of_scope") == refused
    assert Run.objects.get(public_id=claimed["run_id"]).status == RunStatus.LIVE
    assert not Result.objects.exists()


# --- bad keys and scopes --------------------------------------------------------------


def test_key_longer_than_255_characters_is_400(world, task, harness):
    response = harness.claim(task.public_id, **key("k" * 256))
    body = problem(response, 400, "validation_error")
    assert "Idempotency-Key" in body["errors"]
    assert not Run.objects.exists()
    assert not IdempotencyRecord.objects.exists()
    assert harness.claim(task.public_id, **key("k" * 255)).status_code == 200
    assert IdempotencyRecord.objects.get().key == "k" * 255


def test_blank_key_is_400(world, task, harness):
    problem(harness.claim(task.public_id, **key("   ")), 400, "validation_error")
    assert not Run.objects.exists()
    assert not IdempotencyRecord.objects.exists()


def test_keys_are_scoped_per_caller(world, harness):
    mine, theirs = world.task(), world.task()
    first = harness.claim(mine.public_id, **key("shared"))
    second = world.rival_harness().claim(theirs.public_id, **key("shared"))
    assert first.status_code == second.status_code == 200
    assert not second.has_header("Idempotent-Replayed")
    assert second.json()["run_id"] != first.json()["run_id"]
    assert Run.objects.get(task=mine).app == world.app
    assert Run.objects.get(task=theirs).app == world.rival
    scopes = set(IdempotencyRecord.objects.values_list("scope", flat=True))
    assert scopes == {f"app:{world.app.pk}", f"app:{world.rival.pk}"}


def test_keys_of_other_orgs_do_not_collide(world):
    repo = factories.make_repo(world.org, "acme/widgets")
    theirs = factories.make_repo(world.outsider_org, "globex/widgets")
    mine = world.person().post("/api/tasks", create_body(repo), **key("same"))
    other = world.outsider().post("/api/tasks", create_body(theirs), **key("same"))
    assert mine.status_code == other.status_code == 201
    assert not other.has_header("Idempotent-Replayed")
    assert Task.objects.filter(org=world.org).count() == 1
    assert Task.objects.filter(org=world.outsider_org).count() == 1


def test_request_in_flight_is_409(world, task, harness):
    path = harness.url(task.public_id, "claim")
    IdempotencyRecord.objects.create(
        scope=f"app:{world.app.pk}",
        key="busy",
        fingerprint=fingerprint(path, {"app_id": "builder"}),
        state=IdempotencyRecord.IN_FLIGHT,
    )
    response = harness.claim(task.public_id, **key("busy"))
    problem(response, 409, "request_in_flight")
    assert int(response["Retry-After"]) >= 1
    assert not Run.objects.exists()
    record = IdempotencyRecord.objects.get()
    assert record.state == IdempotencyRecord.IN_FLIGHT and record.status_code is None


def test_in_flight_record_with_another_body_is_422(world, task, harness):
    IdempotencyRecord.objects.create(
        scope=f"app:{world.app.pk}",
        key="busy",
        fingerprint=fingerprint(harness.url(task.public_id, "claim"), {"app_id": "other"}),
    )
    problem(harness.claim(task.public_id, **key("busy")), 422, "idempotency_key_reused")
    assert not Run.objects.exists()


def test_in_flight_record_of_another_caller_does_not_block(world, task, harness):
    IdempotencyRecord.objects.create(
        scope=f"app:{world.rival.pk}",
        key="busy",
        fingerprint=fingerprint(harness.url(task.public_id, "claim"), {"app_id": "builder"}),
    )
    assert harness.claim(task.public_id, **key("busy")).status_code == 200
    assert Run.objects.count() == 1


# --- lifetime -------------------------------------------------------------------------


def test_keys_are_forgotten_after_24_hours(world):
    repo = factories.make_repo(world.org, "acme/widgets")
    person = world.person()
    first = person.post("/api/tasks", create_body(repo), **key("daily"))
    assert first.status_code == 201
    with time_machine.travel(timezone.now() + timedelta(hours=23), tick=False):
        held = person.post("/api/tasks", create_body(repo), **key("daily"))
        assert held["Idempotent-Replayed"] == "true"
        assert Task.objects.count() == 1
    with time_machine.travel(timezone.now() + timedelta(hours=24, minutes=1), tick=False):
        fresh = person.post("/api/tasks", create_body(repo), **key("daily"))
        assert fresh.status_code == 201
        assert not fresh.has_header("Idempotent-Replayed")
        assert fresh.json()["id"] != first.json()["id"]
        other = person.post("/api/tasks", {**create_body(repo), "title": "New"}, **key("daily"))
        problem(other, 422, "idempotency_key_reused")
    assert Task.objects.count() == 2
    assert IdempotencyRecord.objects.count() == 1
