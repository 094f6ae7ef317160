"""/metrics on real daphne processes in multiprocess mode: the numbers move as the harness
loop runs, and two server processes plus the sweeper add up to one view."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.sync.client import connect

from tasks.models import Event, Run, RunStatus
from tests.servers import ROOT, Server, daphne, database_env

pytestmark = pytest.mark.django_db(transaction=True)


def scrape(server: Server, token: str | None = None) -> dict[tuple[str, tuple], float]:
    """Every sample of /metrics as {(name, sorted labels): value}."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(server.http + "/metrics", headers=headers)
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = response.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def harness_call(server: Server, world: Any, path: str, body: dict[str, Any]) -> Any:
    status, answer = server.call("POST", path, world.key, body)
    assert status in (200, 201), (status, answer)
    return answer


def test_metrics_add_up_across_processes_and_move_with_the_harness_loop(world, tmp_path):
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    env = {"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir), "ETHER_LEASE_SECONDS": "2"}
    task = world.task()
    stale = world.task()
    with daphne(tmp_path, **env) as one, daphne(tmp_path, **env) as two:
        before = scrape(one)
        assert value(before, "ether_claims_total") == 0
        assert value(before, "ether_steps_total") == 0

        # A browser watches the task on server two while the harness works on server one.
        with connect(f"{two.ws}/api/realtime?token={world.token}", open_timeout=10) as ws:
            ws.send(json.dumps({"action": "subscribe", "topics": [f"tasks/{task.public_id}"]}))
            assert json.loads(ws.recv(timeout=10))["type"] == "subscribed"
            live = scrape(one)  # read through the other process
            assert value(live, "ether_realtime_connections", transport="websocket") == 1
            assert value(live, "ether_realtime_subscriptions") == 1

            base = f"/api/harness/tasks/{task.public_id}"
            run_id = harness_call(one, world, f"{base}/claim", {"app_id": world.app.app_id})[
                "run_id"
            ]
            for n in range(3):
                harness_call(
                    one,
                    world,
                    f"{base}/steps",
                    {"run_id": run_id, "phase": "coding_agent", "user_message": f"step {n}"},
                )
            harness_call(
                two,
                world,
                f"{base}/result",
                {
                    "run_id": run_id,
                    "status": "no_changes",
                    "agent_status": "done",
                    "no_changes_reason": "Already fixed upstream.",
                },
            )
            # The socket got the frames: wait for the result's timeline entry.
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                item = json.loads(ws.recv(timeout=30))
                if item["type"] == "task.timeline" and item.get("kind") == "result":
                    break

        # A browser that was away resumes from the start: its replay is measured.
        topic = f"tasks/{task.public_id}"
        logged = Event.objects.filter(topic=topic).count()
        with connect(f"{one.ws}/api/realtime?token={world.token}", open_timeout=10) as ws:
            ws.send(json.dumps({"action": "subscribe", "topics": [topic], "since": {topic: 0}}))
            assert json.loads(ws.recv(timeout=10))["recovered"] == {topic: True}
            replayed = [json.loads(ws.recv(timeout=10)) for _ in range(logged)]
            assert [f["seq"] for f in replayed] == list(range(1, logged + 1))

        # A lease left to run out, expired by the sweeper: a third process.
        harness_call(
            one,
            world,
            f"/api/harness/tasks/{stale.public_id}/claim",
            {"app_id": world.app.app_id},
        )
        time.sleep(2.5)
        sweep = subprocess.run(
            [sys.executable, "manage.py", "sweep_leases", "--once"],
            cwd=ROOT,
            env={**os.environ, "DJANGO_DEBUG": "1", **database_env(), **env},
            capture_output=True,
            timeout=60,
        )
        assert sweep.returncode == 0, sweep.stderr
        assert Run.objects.get(task=stale).status == RunStatus.EXPIRED

        after_one, after_two = scrape(one), scrape(two)

    # Two daphne processes and the sweeper, one view, whichever process answers.
    for after in (after_one, after_two):
        assert value(after, "ether_claims_total") == 2
        assert value(after, "ether_steps_total") == 3
        assert value(after, "ether_results_total", status="no_changes") == 1
        assert value(after, "ether_deliveries_total") == 1
        assert value(after, "ether_lease_expiries_total") == 1
    after = after_two
    # Requests by route name and status, never by raw path.
    assert (
        value(
            after, "ether_http_requests_total", route="harness-steps", method="POST", status="201"
        )
        == 3
    )
    assert (
        value(
            after, "ether_http_requests_total", route="harness-claim", method="POST", status="200"
        )
        == 2
    )
    assert not any(task.public_id in str(labels) for (_, labels) in after)
    assert (
        value(
            after, "ether_http_request_duration_seconds_count", route="harness-steps", method="POST"
        )
        == 3
    )
    # The socket is closed: its process no longer counts it.
    assert value(after, "ether_realtime_connections", transport="websocket") == 0
    assert value(after, "ether_realtime_subscriptions") == 0
    assert value(after, "ether_realtime_frames_sent_total", transport="websocket") >= 3 * 2
    assert value(after, "ether_realtime_replay_events_count", transport="websocket") == 1
    assert value(after, "ether_realtime_replay_events_sum", transport="websocket") == logged
    assert value(after, "ether_worker_ticks_total", worker="sweep_leases") == 0  # --once


def test_metrics_token_is_required_when_set(world, tmp_path):
    with daphne(tmp_path, ETHER_METRICS_TOKEN="s3cret-scrape") as server:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret-scrape"}):
            request = urllib.request.Request(server.http + "/metrics", headers=headers)
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(request, timeout=10)
            assert refused.value.code == 401
            assert refused.value.headers["WWW-Authenticate"].startswith("Bearer")
        samples = scrape(server, token="s3cret-scrape")
    assert (
        value(samples, "ether_http_requests_total", route="metrics", method="GET", status="401")
        == 3
    )


def test_a_stopped_server_leaves_no_live_gauge_behind(world, tmp_path):
    metrics_dir = tmp_path / "metrics"
    with daphne(tmp_path, PROMETHEUS_MULTIPROC_DIR=str(metrics_dir)) as server:
        ws = connect(f"{server.ws}/api/realtime?token={world.token}", open_timeout=10)
        ws.send(json.dumps({"action": "ping"}))
        ws.recv(timeout=10)
        pid = server.process.pid
        assert value(scrape(server), "ether_realtime_connections", transport="websocket") == 1
        assert list(Path(metrics_dir).glob(f"gauge_livesum_{pid}.db"))
    # Stopped (SIGTERM) with the socket still open: its live gauges leave with it, its
    # counters stay (they keep adding up).
    with contextlib.suppress(Exception):
        ws.close()
    assert not list(Path(metrics_dir).glob(f"gauge_livesum_{pid}.db"))
    assert list(Path(metrics_dir).glob(f"counter_{pid}.db"))


def test_a_killed_servers_open_streams_are_forgotten_by_the_next_server(world, tmp_path):
    metrics_dir = tmp_path / "metrics"
    with daphne(tmp_path, PROMETHEUS_MULTIPROC_DIR=str(metrics_dir)) as server:
        ws = connect(f"{server.ws}/api/realtime?token={world.token}", open_timeout=10)
        ws.send(json.dumps({"action": "ping"}))
        ws.recv(timeout=10)
        killed = server.process.pid
        server.process.kill()  # SIGKILL: no clean exit, its gauge file stays
        server.process.wait(timeout=10)
    with contextlib.suppress(Exception):
        ws.close()
    assert list(Path(metrics_dir).glob(f"gauge_livesum_{killed}.db"))
    with daphne(tmp_path, PROMETHEUS_MULTIPROC_DIR=str(metrics_dir)) as server:
        samples = scrape(server)
    assert not list(Path(metrics_dir).glob(f"gauge_livesum_{killed}.db"))
    assert value(samples, "ether_realtime_connections", transport="websocket") == 0
