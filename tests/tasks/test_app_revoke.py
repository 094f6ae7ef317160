"""Revoking a harness app ends its live leases (issue 12, item 7c): a revoked key can
write nothing, so its lease must not keep blocking the other apps until it runs out."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client

from tasks.harnesses.keys import harness_app_revoke
from tasks.models import Event, Run, RunStatus, Task, TaskStatus
from tests.helpers import problem


def timeline_kinds(task: Task) -> list[str]:
    rows = Event.objects.filter(task=task, name="task.timeline").order_by("seq")
    return [e.payload["kind"] for e in rows]


def revoke_with_service(world) -> None:
    harness_app_revoke(org=world.org, app_id=world.app.app_id)


def revoke_with_command(world) -> None:
    call_command("revoke_harness_app", world.org.slug, world.app.app_id, stdout=None)


def revoke_in_admin(world) -> None:
    admin = get_user_model().objects.create_superuser("root", "root@x.test", "pw")
    client = Client()
    client.force_login(admin)
    response = client.post(
        "/admin/tasks/harnessapp/",
        {"action": "revoke_keys", "_selected_action": [world.app.pk]},
    )
    assert response.status_code == 302, response.content[:300]


@pytest.mark.parametrize("revoke", [revoke_with_service, revoke_with_command, revoke_in_admin])
def test_revoking_the_holder_ends_its_lease_and_the_rival_claim_succeeds(
    world, task, harness, revoke
):
    run_id = harness.claim(task.public_id).json()["run_id"]
    rival = world.rival_harness()
    problem(rival.claim(task.public_id), 409, "lease_held")

    revoke(world)

    run = Run.objects.get(public_id=run_id)
    assert run.status == RunStatus.EXPIRED and run.end_reason == "app_revoked"
    task.refresh_from_db()
    assert task.status == TaskStatus.READY
    entry = Event.objects.get(task=task, payload__kind="lease_revoked")
    assert entry.payload["run_id"] == run_id and entry.payload["app_id"] == world.app.app_id
    assert entry.payload["actor"] == {"type": "system"}
    response = rival.claim(task.public_id)
    assert response.status_code == 200, response.content
    assert response.json()["run_id"] != run_id
    assert timeline_kinds(task) == ["created", "claim", "lease_revoked", "claim"]
    # The revoked key is refused outright, and its old run stays fenced.
    problem(harness.step(task.public_id, run_id), 401, "not_authenticated")
    assert Run.objects.filter(task=task, status=RunStatus.LIVE).get().app == world.rival


def test_a_paused_task_keeps_its_question_when_the_holder_is_revoked(world, task, harness):
    run_id = harness.claim(task.public_id).json()["run_id"]
    assert harness.interrupt(task.public_id, run_id).status_code == 200
    revoke_with_service(world)
    task.refresh_from_db()
    # As after an expiry: the task waits for its answer; the next claim gets it.
    assert task.status == TaskStatus.PAUSED
    assert Run.objects.get(public_id=run_id).status == RunStatus.EXPIRED


def test_revoking_an_app_leaves_other_apps_leases_alone(world, harness):
    mine, theirs = world.task(), world.task()
    harness.claim(mine.public_id)
    rival_run = world.rival_harness().claim(theirs.public_id).json()["run_id"]
    revoke_with_service(world)
    assert Run.objects.get(public_id=rival_run).status == RunStatus.LIVE
    assert Run.objects.filter(task=mine, status=RunStatus.LIVE).count() == 0
    assert not Event.objects.filter(task=theirs, payload__kind="lease_revoked").exists()


def test_a_second_revoke_records_nothing_twice(world, task, harness):
    harness.claim(task.public_id)
    revoke_with_service(world)
    revoke_with_service(world)
    assert Event.objects.filter(task=task, payload__kind="lease_revoked").count() == 1


def test_a_claim_that_authenticated_before_the_revoke_is_refused(world, task):
    """The request's key check ran before the revoke committed (the app object here was
    read then); the claim's own transaction reads the app again and grants nothing."""
    from tasks.errors import AppRevoked
    from tasks.services.claims import lease_claim

    app = world.app
    harness_app_revoke(org=world.org, app_id=app.app_id)
    with pytest.raises(AppRevoked):
        lease_claim(app=app, task=task)
    task.refresh_from_db()
    assert task.status == TaskStatus.READY
    assert not Run.objects.filter(task=task).exists()
    assert "claim" not in timeline_kinds(task)


@pytest.mark.django_db(transaction=True)
def test_claims_racing_a_revoke_leave_no_live_lease_of_the_revoked_app():
    """Real threads and connections: claims of one app on many tasks while the app is
    revoked. Whatever the order, once both are done the revoked app holds no lease."""
    import threading

    from django.db import connection

    from tasks.errors import AppRevoked, LeaseLost
    from tasks.services.claims import lease_claim
    from tests import factories

    org = factories.make_org("revrace")
    app, _key = factories.make_app(org, "doomed")
    tasks = [factories.make_task(org) for _ in range(12)]
    barrier = threading.Barrier(len(tasks) + 1)
    errors: list[BaseException] = []

    def claim(target: Task) -> None:
        try:
            barrier.wait(timeout=30)
            lease_claim(app=app, task=target)
        except (AppRevoked, LeaseLost):
            pass
        except BaseException as exc:  # anything else fails the test below
            errors.append(exc)
        finally:
            connection.close()

    def revoke() -> None:
        try:
            barrier.wait(timeout=30)
            harness_app_revoke(org=org, app_id=app.app_id)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=claim, args=(t,)) for t in tasks]
    threads.append(threading.Thread(target=revoke))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert all(not t.is_alive() for t in threads), "a thread hung"
    assert errors == []
    assert not Run.objects.filter(app=app, status=RunStatus.LIVE).exists()
    for target in tasks:
        target.refresh_from_db()
        assert target.status == TaskStatus.READY
