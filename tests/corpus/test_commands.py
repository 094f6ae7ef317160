from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO

import pytest
import time_machine
from django.conf import settings
from django.contrib.auth import authenticate
from django.core.management import CommandError, call_command
from django.utils import timezone

from accounts.credentials import hash_secret
from accounts.models import AccessToken
from tasks.models import Event, HarnessApp, Run, RunStatus, Task, TaskStatus
from tests.helpers import Caller, Harness, problem

SEED_KEYS = {
    "org",
    "username",
    "password",
    "access_token",
    "app_id",
    "harness_key",
    "project",
    "repo",
    "task_id",
    "base_url",
}


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def last_line(output: str) -> str:
    return output.strip().splitlines()[-1].strip()


def seed() -> dict:
    output = run("seed_demo", "--json")
    data = json.loads(output)
    assert output.strip() == json.dumps(data)
    return data


# --- create_harness_app ---------------------------------------------------------------


def test_create_harness_app_prints_a_working_key_last(world, task):
    key = last_line(run("create_harness_app", "acme", "nightly"))
    assert key.startswith("eth_app_")
    app = HarnessApp.objects.get(org=world.org, app_id="nightly")
    assert app.key_hash == hash_secret(key)
    assert key not in (app.key_hash, app.key_prefix)
    assert app.revoked_at is None
    response = Harness(key, "nightly").claim(task.public_id)
    assert response.status_code == 200, response.content
    assert Run.objects.get(task=task).app == app


def test_create_harness_app_attaches_a_definition_by_name(world):
    run("create_harness_app", "acme", "nightly", "--harness", "generic")
    assert HarnessApp.objects.get(app_id="nightly").harness.name == "generic"
    with pytest.raises(CommandError, match="No harness 'reviewer'"):
        run("create_harness_app", "acme", "nightly2", "--harness", "reviewer")
    assert not HarnessApp.objects.filter(app_id="nightly2").exists()


def test_create_existing_harness_app_without_rotate_errors(world, task):
    with pytest.raises(CommandError, match="already exists"):
        run("create_harness_app", "acme", "builder")
    assert HarnessApp.objects.filter(org=world.org, app_id="builder").count() == 1
    assert world.harness().claim(task.public_id).status_code == 200


def test_rotate_gives_a_new_key_and_the_old_one_stops(world, task):
    new_key = last_line(run("create_harness_app", "acme", "builder", "--rotate"))
    assert new_key != world.key
    body = problem(world.harness().claim(task.public_id), 401, "not_authenticated")
    assert "Unknown" in body["detail"]
    assert not Run.objects.exists()
    assert Harness(new_key, "builder").claim(task.public_id).status_code == 200
    assert HarnessApp.objects.filter(org=world.org, app_id="builder").count() == 1


def test_rotate_unrevokes_a_revoked_app(world, task):
    run("revoke_harness_app", "acme", "builder")
    new_key = last_line(run("create_harness_app", "acme", "builder", "--rotate"))
    assert HarnessApp.objects.get(org=world.org, app_id="builder").revoked_at is None
    assert Harness(new_key, "builder").claim(task.public_id).status_code == 200


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("nosuchorg", "nightly"), "No org"),
        (("acme", "Not A Slug"), "invalid"),
        (("acme", "x" * 65), "invalid"),
    ],
)
def test_create_harness_app_bad_arguments_error(world, args, message):
    before = HarnessApp.objects.count()
    with pytest.raises(CommandError, match=message):
        run("create_harness_app", *args)
    assert HarnessApp.objects.count() == before


def test_same_app_id_may_exist_in_two_orgs(world):
    run("create_harness_app", "globex", "rival")
    assert HarnessApp.objects.filter(app_id="rival").count() == 2


# --- revoke_harness_app ---------------------------------------------------------------


def test_revoke_harness_app_stops_its_key(world, task):
    output = run("revoke_harness_app", "acme", "builder")
    assert "Revoked acme/builder" in output
    assert HarnessApp.objects.get(org=world.org, app_id="builder").revoked_at is not None
    body = problem(world.harness().claim(task.public_id), 401, "not_authenticated")
    assert "revoked" in body["detail"]
    assert not Run.objects.exists()
    # Only that app: the rival and the other org's app with the same app_id still work.
    assert world.rival_harness().claim(task.public_id).status_code == 200
    assert world.outsider_app.revoked_at is None
    assert HarnessApp.objects.get(pk=world.outsider_app.pk).revoked_at is None


def test_revoke_unknown_app_or_org_errors(world):
    with pytest.raises(CommandError, match="No harness app"):
        run("revoke_harness_app", "acme", "ghost")
    with pytest.raises(CommandError, match="No org"):
        run("revoke_harness_app", "nosuchorg", "builder")
    assert not HarnessApp.objects.filter(revoked_at__isnull=False).exists()


# --- create_access_token --------------------------------------------------------------


def test_create_access_token_prints_a_working_token_last(world, task):
    token = last_line(run("create_access_token", "alice"))
    assert token.startswith("eth_pat_")
    row = AccessToken.objects.get(token_hash=hash_secret(token))
    assert row.user == world.user and row.expires_at is None
    response = Caller(token).get(f"/api/tasks/{task.public_id}")
    assert response.status_code == 200
    assert response.json()["id"] == task.public_id


def test_create_access_token_with_expiry(world):
    token = last_line(run("create_access_token", "alice", "--expires-days", "1", "--label", "ci"))
    row = AccessToken.objects.get(token_hash=hash_secret(token))
    assert row.label == "ci"
    assert Caller(token).get("/api/tasks").status_code == 200
    with time_machine.travel(timezone.now() + timedelta(days=1, minutes=1), tick=False):
        problem(Caller(token).get("/api/tasks"), 401, "not_authenticated")


def test_create_access_token_for_unknown_user_errors(world):
    before = AccessToken.objects.count()
    with pytest.raises(CommandError, match="No user"):
        run("create_access_token", "ghost")
    with pytest.raises(CommandError, match="at least 1"):
        run("create_access_token", "alice", "--expires-days", "0")
    assert AccessToken.objects.count() == before


# --- seed_demo ------------------------------------------------------------------------


def test_seed_demo_json_prints_one_object_with_exactly_the_contract_keys(db):
    data = seed()
    assert set(data) == SEED_KEYS
    assert data["org"] == "demo"
    assert data["base_url"] == "http://127.0.0.1:8080"
    task = Task.objects.get(public_id=data["task_id"])
    assert task.org.slug == data["org"]
    assert task.status == TaskStatus.READY
    assert task.project.slug == data["project"]
    assert task.repo.full_name == data["repo"]
    assert task.owner.username == data["username"]
    app = HarnessApp.objects.get(org=task.org, app_id=data["app_id"])
    assert app.key_hash == hash_secret(data["harness_key"])


def test_seed_demo_secrets_really_authenticate(db):
    data = seed()
    person = Caller(data["access_token"])
    response = person.get(f"/api/tasks/{data['task_id']}")
    assert response.status_code == 200
    assert response.json()["project"] == data["project"]
    assert response.json()["repo"] == data["repo"]
    claim = Harness(data["harness_key"], data["app_id"]).claim(data["task_id"])
    assert claim.status_code == 200, claim.content
    assert Run.objects.get(task__public_id=data["task_id"]).app.app_id == data["app_id"]
    user = authenticate(username=data["username"], password=data["password"])
    assert user is not None and user.username == data["username"]


def test_seed_demo_twice_gives_a_fresh_task_and_fresh_secrets(db):
    first = seed()
    second = seed()
    assert set(second) == SEED_KEYS
    assert second["task_id"] != first["task_id"]
    for name in ("harness_key", "access_token", "password"):
        assert second[name] != first[name], name
    for name in ("org", "username", "app_id", "project", "repo"):
        assert second[name] == first[name], name
    assert Task.objects.filter(org__slug="demo").count() == 2
    assert HarnessApp.objects.filter(app_id=first["app_id"]).count() == 1
    old = Harness(first["harness_key"], first["app_id"]).claim(second["task_id"])
    problem(old, 401, "not_authenticated")
    assert not Run.objects.exists()
    new = Harness(second["harness_key"], second["app_id"]).claim(second["task_id"])
    assert new.status_code == 200
    assert Caller(second["access_token"]).get("/api/tasks").status_code == 200
    assert authenticate(username=first["username"], password=first["password"]) is None
    assert authenticate(username=second["username"], password=second["password"]) is not None


def test_seed_demo_works_next_to_existing_orgs(world):
    data = seed()
    assert set(data) == SEED_KEYS
    assert Task.objects.filter(org=world.org).count() == 0
    body = Caller(data["access_token"]).get("/api/tasks").json()
    assert [t["id"] for t in body["data"]] == [data["task_id"]]


def test_seed_demo_base_url_option(db):
    output = run("seed_demo", "--json", "--base-url", "http://example.test:9000/")
    assert json.loads(output)["base_url"] == "http://example.test:9000"


def saved_token(output: str) -> str:
    return next(line.split()[-1] for line in output.splitlines() if "access token" in line)


def test_seed_demo_without_json_prints_the_banner(db, tmp_path):
    secrets_file = tmp_path / "demo.json"
    output = run("seed_demo", "--secrets-file", str(secrets_file))
    task = Task.objects.get()
    assert task.public_id in output
    assert "harness key" in output
    # How to see the delivery loop: the task page and the demo harness command.
    assert f"http://127.0.0.1:8080/tasks/{task.public_id}" in output
    assert "make demo" in output
    # And how to watch it from a terminal over the realtime hub.
    assert f"ws://127.0.0.1:8080/api/realtime?token={saved_token(output)}" in output
    assert f'"topics": ["tasks/{task.public_id}"]' in output
    saved = json.loads(secrets_file.read_text())
    assert set(saved) == SEED_KEYS and saved["task_id"] == task.public_id
    assert saved["harness_key"] in output
    assert secrets_file.stat().st_mode & 0o777 == 0o600


# --- sweep_leases ---------------------------------------------------------------------


def test_sweep_leases_once_expires_only_overdue_leases(world, harness):
    overdue, fresh = world.task(), world.task()
    old = harness.claim(overdue.public_id).json()
    later = timezone.now() + timedelta(seconds=settings.ETHER_LEASE_SECONDS + 1)
    with time_machine.travel(later, tick=False):
        recent = world.rival_harness().claim(fresh.public_id).json()
        assert last_line(run("sweep_leases", "--once")) == "expired 1 lease(s)"
        assert last_line(run("sweep_leases", "--once")) == "expired 0 lease(s)"
    assert Run.objects.get(public_id=old["run_id"]).status == RunStatus.EXPIRED
    assert Run.objects.get(public_id=recent["run_id"]).status == RunStatus.LIVE
    assert Task.objects.get(pk=overdue.pk).status == TaskStatus.READY
    assert Task.objects.get(pk=fresh.pk).status == TaskStatus.IN_PROGRESS
    kinds = Event.objects.filter(task=overdue, name="task.timeline").values_list(
        "payload__kind", flat=True
    )
    assert list(kinds).count("lease_expired") == 1
    assert not Event.objects.filter(task=fresh, payload__kind="lease_expired").exists()


def test_sweep_leases_keeps_a_paused_task_paused(world, task, harness, claimed):
    harness.interrupt(task.public_id, claimed["run_id"])
    later = timezone.now() + timedelta(seconds=settings.ETHER_LEASE_SECONDS + 1)
    with time_machine.travel(later, tick=False):
        assert last_line(run("sweep_leases", "--once")) == "expired 1 lease(s)"
    assert Run.objects.get(public_id=claimed["run_id"]).status == RunStatus.EXPIRED
    assert Task.objects.get(pk=task.pk).status == TaskStatus.PAUSED


def test_sweep_leases_with_nothing_due(world, task, claimed):
    assert last_line(run("sweep_leases", "--once")) == "expired 0 lease(s)"
    assert Run.objects.get(public_id=claimed["run_id"]).status == RunStatus.LIVE
