from __future__ import annotations

import re

from tasks.models import Event, Run, RunStatus, Task, TaskStatus
from tests.helpers import Harness, problem

ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def test_claim_grants_lease_and_bundle(world, task, harness):
    response = harness.claim(task.public_id)
    assert response.status_code == 200
    body = response.json()
    assert re.fullmatch(r"run_[0-9a-f]{32}", body["run_id"])
    assert body["lease_epoch"] == 1
    assert ISO_Z.match(body["lease_expires_at"])
    bundle = body["bundle"]
    assert bundle["task_id"] == task.public_id
    assert bundle["definition_of_done"] == task.definition_of_done
    assert bundle["scope"]["repo"]["full_name"] == task.repo.full_name
    assert bundle["scope"]["branch_scope"] == task.branch_scope
    assert bundle["callbacks"]["report_step_url"] == (
        f"http://testserver/api/harness/tasks/{task.public_id}/steps"
    )
    assert bundle["callbacks"]["websocket_topic"] == f"tasks/{task.public_id}"
    run = Run.objects.get(public_id=body["run_id"])
    assert run.status == RunStatus.LIVE and run.app == world.app and run.lease_epoch == 1
    task.refresh_from_db()
    assert task.status == TaskStatus.IN_PROGRESS
    kinds = [e.payload.get("kind") for e in Event.objects.filter(task=task, name="task.timeline")]
    assert kinds == ["created", "claim"]


def test_callback_urls_follow_the_host_the_client_used(world, task, harness):
    response = harness.claim(task.public_id, HTTP_HOST="localhost")
    assert response.json()["bundle"]["callbacks"]["result_url"].startswith("http://localhost/")


def test_claim_by_rival_app_is_409_lease_held(world, task, harness, claimed):
    response = world.rival_harness().claim(task.public_id)
    body = problem(response, 409, "lease_held")
    assert body["holder_app_id"] == "builder"
    assert body["lease_expires_at"] == claimed["lease_expires_at"]
    assert 1 <= int(response["Retry-After"]) <= 300
    assert Run.objects.filter(task=task).count() == 1


def test_same_app_reclaim_returns_same_run_with_bumped_epoch(world, task, harness, claimed):
    again = harness.claim(task.public_id).json()
    assert again["run_id"] == claimed["run_id"]
    assert again["lease_epoch"] == claimed["lease_epoch"] + 1
    assert again["lease_expires_at"] >= claimed["lease_expires_at"]
    assert Run.objects.filter(task=task).count() == 1


def test_claim_with_another_apps_id_is_403(world, task, harness):
    response = harness.post(harness.url(task.public_id, "claim"), {"app_id": "rival"})
    problem(response, 403, "forbidden")
    assert not Run.objects.filter(task=task).exists()


def test_claim_paused_task_is_409_task_paused(world, task, harness, claimed):
    harness.interrupt(task.public_id, claimed["run_id"])
    problem(world.rival_harness().claim(task.public_id), 409, "task_paused")


def test_claim_task_closed_by_a_result_is_409_task_closed(world, task, harness, claimed):
    finished = harness.result(
        task.public_id, claimed["run_id"], "no_changes", no_changes_reason="Already fixed."
    )
    assert finished.status_code == 200, finished.content
    problem(harness.claim(task.public_id), 409, "task_closed")
    assert Run.objects.filter(task=task).count() == 1


def test_claim_cancelled_task_is_409_task_closed(world, task, harness):
    cancelled = world.person().post(f"/api/tasks/{task.public_id}/cancel")
    assert cancelled.status_code == 200, cancelled.content
    problem(harness.claim(task.public_id), 409, "task_closed")
    assert not Run.objects.filter(task=task).exists()


def test_claim_validation_errors_are_400(world, task, harness):
    url = harness.url(task.public_id, "claim")
    body = problem(harness.post(url, {}), 400, "validation_error")
    assert "app_id" in body["errors"]
    body = problem(harness.post(url, {"app_id": 7}), 400, "validation_error")
    assert body["errors"]["app_id"] == ["Must be a string."]
    problem(harness.post(url, raw="{nope"), 400, "malformed_json")
    problem(harness.post(url, raw="[1,2]"), 400, "validation_error")
    problem(harness.post(url, {"app_id": "builder", "extra": 1}), 400, "validation_error")
    problem(
        harness.post(url, raw="app_id=builder", content_type="text/plain"),
        415,
        "unsupported_media_type",
    )
    assert not Run.objects.exists()


def test_claim_auth_failures_are_401(world, task):
    url = Harness.url(task.public_id, "claim")
    problem(Harness("", "builder").post(url, {"app_id": "builder"}), 401, "not_authenticated")
    problem(
        Harness("eth_app_wrong", "builder").post(url, {"app_id": "builder"}),
        401,
        "not_authenticated",
    )
    problem(
        Harness(world.token, "builder").post(url, {"app_id": "builder"}), 401, "not_authenticated"
    )
    from tasks.harnesses.keys import harness_app_revoke

    harness_app_revoke(org=world.org, app_id="builder")
    response = world.harness().claim(task.public_id)
    assert "revoked" in problem(response, 401, "not_authenticated")["detail"]
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert not Run.objects.exists()


def test_claim_unknown_other_org_and_malformed_ids_are_404(world, task, harness):
    problem(harness.claim("task_" + "0" * 32), 404, "not_found")
    problem(harness.claim("task_nothex"), 404, "not_found")
    problem(world.outsider_harness().claim(task.public_id), 404, "not_found")
    assert not Run.objects.exists()


def test_claim_get_is_405(world, task, harness):
    problem(harness.get(harness.url(task.public_id, "claim")), 405, "method_not_allowed")


def test_execution_preview_does_not_claim(world, task, harness):
    response = harness.get(harness.url(task.public_id, "execution"))
    assert response.status_code == 200
    assert response.json()["task_id"] == task.public_id
    assert not Run.objects.exists()
    assert Task.objects.get(pk=task.pk).status == TaskStatus.READY
    problem(
        world.outsider_harness().get(harness.url(task.public_id, "execution")), 404, "not_found"
    )
    problem(harness.post(harness.url(task.public_id, "execution")), 405, "method_not_allowed")
