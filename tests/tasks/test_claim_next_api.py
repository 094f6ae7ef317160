"""POST /api/harness/claim-next through the public API, one look at a time (Django's test
client does not go through api.longpoll; tests/tasks/test_claim_next_server.py waits on
real daphne processes)."""

from __future__ import annotations

import pytest

from tasks.models import Run, RunStatus, Task, TaskStatus
from tests import factories
from tests.helpers import past_expiry, problem, stored

URL = "/api/harness/claim-next"


def claim_next(harness, key=None, **body):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return harness.post(URL, {"app_id": harness.app_id, **body}, **headers)


def test_nothing_ready_is_204_without_a_body(world):
    response = claim_next(world.harness())
    assert response.status_code == 204
    assert response.content == b""


def test_oldest_ready_first_then_204(world):
    first, second = world.task(title="first"), world.task(title="second")
    harness = world.harness()
    one = claim_next(harness).json()
    assert one["bundle"]["task_id"] == first.public_id
    assert one["lease_epoch"] == 1
    assert one["bundle"]["callbacks"]["heartbeat_url"].endswith(
        f"/api/harness/tasks/{first.public_id}/heartbeat"
    )
    assert claim_next(harness).json()["bundle"]["task_id"] == second.public_id
    assert claim_next(harness).status_code == 204
    assert Run.objects.get(public_id=one["run_id"]).app == world.app
    assert Task.objects.get(pk=first.pk).status == TaskStatus.IN_PROGRESS


def test_a_claim_next_run_is_a_run_like_any_other(world):
    task = world.task()
    harness = world.harness()
    run_id = claim_next(harness).json()["run_id"]
    assert harness.heartbeat(task.public_id, run_id).status_code == 200
    assert harness.result(task.public_id, run_id).status_code == 200
    assert Task.objects.get(pk=task.pk).status == TaskStatus.NO_CHANGES


def test_assigned_tasks_go_only_to_their_app(world):
    theirs = world.task(title="theirs", assigned_app_id="rival")
    mine = world.task(title="mine", assigned_app_id="builder")
    assert claim_next(world.harness()).json()["bundle"]["task_id"] == mine.public_id
    assert claim_next(world.harness()).status_code == 204
    assert claim_next(world.rival_harness()).json()["bundle"]["task_id"] == theirs.public_id


def test_paused_running_and_closed_tasks_are_not_handed_out(world):
    paused = world.task()
    harness = world.harness()
    run_id = harness.claim(paused.public_id).json()["run_id"]
    harness.interrupt(paused.public_id, run_id)
    running = world.task()
    world.rival_harness().claim(running.public_id)
    cancelled = world.task()
    world.person().post(f"/api/tasks/{cancelled.public_id}/cancel")
    before = stored()
    assert claim_next(world.harness()).status_code == 204
    assert stored() == before


def test_a_task_whose_lease_expired_is_handed_out_again(world):
    task = world.task()
    old = world.rival_harness().claim(task.public_id).json()["run_id"]
    with past_expiry(old):
        again = claim_next(world.harness())
    assert again.status_code == 200
    assert again.json()["bundle"]["task_id"] == task.public_id
    assert Run.objects.get(public_id=old).status == RunStatus.EXPIRED


def test_another_orgs_tasks_are_never_handed_out(world):
    factories.make_task(world.outsider_org)
    assert claim_next(world.harness()).status_code == 204


def test_another_apps_id_is_403_and_claims_nothing(world):
    world.task()
    before = stored()
    response = world.harness().post(URL, {"app_id": "rival"})
    problem(response, 403, "forbidden")
    assert stored() == before


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"app_id": "builder", "wait": 31},
        {"app_id": "builder", "wait": -1},
        {"app_id": "builder", "wait": "5"},
        {"app_id": "builder", "wait": 1.5},
        {"app_id": "builder", "wait": True},
        {"app_id": "builder", "extra": 1},
        {"app_id": 5},
    ],
)
def test_bad_bodies_are_400_and_claim_nothing(world, body):
    world.task()
    before = stored()
    problem(world.harness().post(URL, body), 400, "validation_error")
    assert stored() == before


def test_needs_a_harness_key(world):
    world.task()
    problem(world.person().post(URL, {"app_id": "builder"}), 401, "not_authenticated")
    problem(world.harness().get(URL), 405, "method_not_allowed")
    assert not Run.objects.exists()


def test_a_revoked_key_is_401(world):
    from tasks.harnesses.keys import harness_app_revoke

    world.task()
    harness = world.harness()
    harness_app_revoke(org=world.org, app_id="builder")
    problem(claim_next(harness), 401, "not_authenticated")
    assert not Run.objects.exists()


def test_idempotency_key_replays_the_claim(world):
    world.task()
    world.task()
    harness = world.harness()
    first = claim_next(harness, key="loop-1")
    again = claim_next(harness, key="loop-1")
    assert again.status_code == 200 and again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert Run.objects.count() == 1
    other = claim_next(harness, key="loop-2")
    assert other.json()["run_id"] != first.json()["run_id"]


def test_wait_without_the_long_poll_handler_is_one_look(world):
    """Django's test client does not go through api.longpoll: one look, then 204."""
    response = claim_next(world.harness(), wait=30)
    assert response.status_code == 204
