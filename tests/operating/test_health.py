"""/healthz and /readyz: unauthenticated, cheap, and /readyz names what failed."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from api.heartbeat import worker_beat
from api.models import WorkerHeartbeat
from tests.helpers import Caller
from tests.servers import daphne, free_port


def get_json(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_healthz_answers_without_credentials_or_database(db, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = Caller(None).get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_is_200_when_the_database_layer_and_sweeper_answer(db):
    worker_beat("sweep_leases")
    response = Caller(None).get("/readyz")
    assert response.status_code == 200, response.json()
    assert response.json() == {
        "status": "ok",
        "failed": [],
        "checks": {"database": "ok", "channel_layer": "ok"},
        "workers": {"sweep_leases": "ok"},
    }


def test_readyz_is_503_while_the_sweeper_never_ran(db):
    response = Caller(None).get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["failed"] == ["worker:sweep_leases"]
    assert body["workers"] == {"sweep_leases": "never seen"}
    assert body["checks"] == {"database": "ok", "channel_layer": "ok"}


def test_readyz_names_a_worker_whose_heartbeat_went_stale(db, settings):
    settings.ETHER_WORKER_STALE_SECONDS = 30
    worker_beat("sweep_leases")
    # A worker that is not required but has beaten (the webhook sender) is checked too.
    worker_beat("send_webhooks")
    WorkerHeartbeat.objects.filter(name="send_webhooks").update(
        beat_at=timezone.now() - timedelta(seconds=95)
    )
    response = Caller(None).get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["failed"] == ["worker:send_webhooks"]
    assert body["workers"]["sweep_leases"] == "ok"
    assert body["workers"]["send_webhooks"].startswith("stale (9")
    # It beats again: ready again.
    worker_beat("send_webhooks")
    assert Caller(None).get("/readyz").status_code == 200


def test_worker_beat_updates_one_row_in_place(db):
    worker_beat("sweep_leases")
    first = WorkerHeartbeat.objects.get(name="sweep_leases")
    worker_beat("sweep_leases")
    second = WorkerHeartbeat.objects.get(name="sweep_leases")
    assert WorkerHeartbeat.objects.count() == 1
    assert second.beat_at >= first.beat_at and second.started_at == first.started_at


def test_workers_command_lists_and_forgets_a_retired_worker(db, capsys):
    worker_beat("sweep_leases")
    worker_beat("old_worker")
    call_command("workers")
    out = capsys.readouterr().out
    assert "sweep_leases" in out and "old_worker" in out
    call_command("workers", "--forget", "old_worker")
    assert list(WorkerHeartbeat.objects.values_list("name", flat=True)) == ["sweep_leases"]


@pytest.mark.django_db(transaction=True)
def test_the_sweeper_process_makes_readyz_ready(world, tmp_path):
    """The real worker beats: readyz goes from 503 to 200 once `sweep_leases` runs."""
    import os
    import subprocess
    import sys
    import time

    from tests.servers import ROOT, database_env

    with daphne(tmp_path) as server:
        status, body = get_json(server.http + "/readyz")
        assert status == 503 and body["failed"] == ["worker:sweep_leases"]
        sweeper = subprocess.Popen(
            [sys.executable, "manage.py", "sweep_leases", "--interval", "0.2"],
            cwd=ROOT,
            env={**os.environ, "DJANGO_DEBUG": "1", **database_env()},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                status, body = get_json(server.http + "/readyz")
                if status == 200:
                    break
                time.sleep(0.2)
            assert status == 200, body
        finally:
            sweeper.terminate()
            sweeper.wait(timeout=30)
        assert sweeper.returncode == 0


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
@pytest.mark.django_db(transaction=True)
def test_readyz_is_503_naming_the_database_and_the_channel_layer_when_they_are_gone(
    world, tmp_path, database
):
    closed = free_port()  # nothing listens there
    if database == "postgres":
        gone = {
            "DATABASE_URL": f"postgres://postgres@127.0.0.1:{closed}/ether",
            "ETHER_DB_LOCK_TIMEOUT": "1",
        }
    else:  # a file SQLite cannot open: its directory does not exist
        gone = {"DATABASE_URL": "", "ETHER_SQLITE_PATH": str(tmp_path / "no-such-dir" / "x.db")}
    with daphne(tmp_path, redis_url=f"redis://127.0.0.1:{closed}/0", **gone) as server:
        status, body = get_json(server.http + "/readyz")
        healthz, _ = get_json(server.http + "/healthz")
    assert healthz == 200  # the process itself is up
    assert status == 503
    assert body["failed"] == ["database", "channel_layer"]
    assert body["checks"]["database"].startswith("failed")
    assert body["checks"]["channel_layer"].startswith("failed")
