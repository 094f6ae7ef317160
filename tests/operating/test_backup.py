"""manage.py backup / restore round-trip on the real database of the run (a SQLite file,
or Postgres through pg_dump and pg_restore): everything comes back."""

from __future__ import annotations

import io
import os
import stat

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from corpus.models import DocumentVersion
from delivery.models import Delivery
from tasks.models import Event, Result, Run, Step, Task

pytestmark = pytest.mark.django_db(transaction=True)


def snapshot() -> dict[str, set]:
    return {
        "tasks": set(Task.objects.values_list("public_id", "status", "lease_epoch")),
        "runs": set(Run.objects.values_list("public_id", "status", "lease_epoch")),
        "steps": set(Step.objects.values_list("public_id", "seq", "user_message")),
        "events": set(Event.objects.values_list("topic", "seq", "name")),
        "versions": set(DocumentVersion.objects.values_list("document__path", "version", "body")),
        "results": set(Result.objects.values_list("run__public_id", "status")),
        "deliveries": set(Delivery.objects.values_list("task__public_id", "version", "status")),
    }


def run_the_loop(world) -> None:
    harness = world.harness()
    for n in range(2):
        task = world.task(title=f"Task {n}")
        run_id = harness.claim(task.public_id).json()["run_id"]
        for m in range(3):
            assert harness.step(task.public_id, run_id, f"step {n}.{m}").status_code == 201
        response = harness.result(task.public_id, run_id, working_summary=f"Notes {n}.")
        assert response.status_code == 200, response.content


def test_backup_and_restore_bring_back_every_task_run_event_version_and_delivery(world, tmp_path):
    run_the_loop(world)
    before = snapshot()
    assert all(before.values()), before
    path = tmp_path / "ether.backup"
    out = io.StringIO()
    call_command("backup", str(path), stdout=out)
    assert f"to {path}" in out.getvalue()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600  # it holds key hashes
    assert not (tmp_path / "ether.backup.partial").exists()

    # A disaster: a task and everything under it deleted, a stray task added.
    Task.objects.filter(title="Task 0").delete()
    world.task(title="made after the backup")
    assert snapshot() != before

    call_command("restore", str(path), "--no-input", stdout=io.StringIO())
    assert snapshot() == before
    assert not Task.objects.filter(title="made after the backup").exists()
    # The restored database serves the API: the next step of a new task takes seq 1 on.
    task = world.task(title="after the restore")
    harness = world.harness()
    run_id = harness.claim(task.public_id).json()["run_id"]
    assert harness.step(task.public_id, run_id).status_code == 201
    assert world.person().get(f"/api/tasks/{task.public_id}").status_code == 200


def test_restore_refuses_a_file_that_is_no_backup_and_changes_nothing(world, tmp_path):
    run_the_loop(world)
    before = snapshot()
    junk = tmp_path / "junk.backup"
    junk.write_bytes(b"not a backup at all" * 10)
    with pytest.raises(CommandError, match="not a"):
        call_command("restore", str(junk), "--no-input")
    with pytest.raises(CommandError, match="not a file"):
        call_command("restore", str(tmp_path / "missing"), "--no-input")
    assert snapshot() == before


def test_restore_asks_before_replacing_everything(world, tmp_path, monkeypatch):
    path = tmp_path / "ether.backup"
    call_command("backup", str(path), stdout=io.StringIO())
    world.task(title="kept")
    monkeypatch.setattr("builtins.input", lambda prompt: "no")
    with pytest.raises(CommandError, match="cancelled"):
        call_command("restore", str(path))
    assert Task.objects.filter(title="kept").exists()


@pytest.mark.skipif(
    os.environ.get("DATABASE_URL", "") == "", reason="pg_dump is the Postgres backup"
)
def test_without_pg_dump_the_command_says_how_to_back_up_by_hand(world, tmp_path, monkeypatch):
    assert connection.vendor == "postgresql"
    monkeypatch.setenv("PATH", str(tmp_path))  # no pg_dump there
    with pytest.raises(CommandError, match="pg_dump --format=custom"):
        call_command("backup", str(tmp_path / "x.backup"))
    assert not (tmp_path / "x.backup").exists()
