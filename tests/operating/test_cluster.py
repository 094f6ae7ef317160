"""``make run WORKERS=2`` for real: ``python -m ether_site.cluster`` starts two daphne
processes behind Debian's haproxy on this test's Postgres database and Redis, with the
background workers once. What goes in through one process reaches clients of the other,
directly and through haproxy; SSE streams through it unbuffered; the pages load and sign
in through it; haproxy routes by ``/readyz``; the metrics of both processes add up.
(Postgres + Redis runs only; skipped on SQLite or without haproxy.)"""

from __future__ import annotations

import http.cookiejar
import json
import re
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import ClientConnection, connect

from api.models import WorkerHeartbeat
from tasks.models import Step
from tests.servers import ROOT, Cluster, Server, cluster, cluster_unavailable

UNAVAILABLE = cluster_unavailable()
needs_cluster = pytest.mark.skipif(UNAVAILABLE is not None, reason=UNAVAILABLE or "")

PASSWORD = "cluster-password-1"


def subscribed(server: Server, token: str, topic: str) -> ClientConnection:
    ws = connect(f"{server.ws}/api/realtime?token={token}", open_timeout=15)
    ws.send(json.dumps({"action": "subscribe", "topics": [topic]}))
    assert json.loads(ws.recv(timeout=15))["type"] == "subscribed"
    return ws


def step_heard(ws: ClientConnection, message: str) -> dict[str, Any]:
    """The ``os.harness.step`` frame carrying ``message`` (other frames are skipped)."""
    deadline = time.monotonic() + 15
    while True:
        item = json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic())))
        if item["type"] == "os.harness.step" and item["user_message"] == message:
            return item


def metric(server: Server, name: str) -> float:
    with urllib.request.urlopen(f"{server.http}/metrics", timeout=10) as response:
        text = response.read().decode()
    found = re.search(rf"^{name} ([0-9.e+]+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def sign_in_and_load(base: str, task_id: str, title: str) -> None:
    """A browser's requests, through haproxy: each may land on either process."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    with opener.open(f"{base}/login/?next=/tasks/", timeout=15) as response:
        page = response.read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    form = urllib.parse.urlencode(
        {"username": "alice", "password": PASSWORD, "csrfmiddlewaretoken": token}
    ).encode()
    signed = urllib.request.Request(
        f"{base}/login/?next=/tasks/", data=form, headers={"Referer": f"{base}/login/"}
    )
    with opener.open(signed, timeout=15) as response:
        assert response.url.endswith("/tasks/"), response.url
    for _ in range(4):  # the session (in the database) is good on both processes
        with opener.open(f"{base}/tasks/{task_id}", timeout=15) as response:
            assert response.status == 200
            assert title in response.read().decode()
    for asset in ("/api/docs/", "/api/schema/"):
        with opener.open(base + asset, timeout=30) as response:
            assert response.status == 200


def wait_for(check: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def server_states(run: Cluster) -> dict[str, str]:
    return {
        row["svname"]: row["status"]
        for row in run.haproxy_stats()
        if row["pxname"] == "ether" and row["svname"].startswith("ether")
    }


@needs_cluster
@pytest.mark.django_db(transaction=True)
def test_two_processes_behind_haproxy(world, tmp_path):
    world.user.set_password(PASSWORD)
    world.user.save()
    task = world.task(title="Cluster task")
    topic = f"tasks/{task.public_id}"
    with cluster(tmp_path, workers=2) as run:
        lb, (one, two) = run.balancer, run.backends
        assert one.port != two.port and lb.port not in {one.port, two.port}
        # haproxy's own view: both processes up, checked on /readyz.
        config = (tmp_path / f"cluster-{lb.port}" / "cluster" / "haproxy.cfg").read_text()
        assert "uri /readyz" in config and f"127.0.0.1:{one.port}" in config
        wait_for(lambda: server_states(run) == {"ether1": "UP", "ether2": "UP"})

        direct_one = subscribed(one, world.token, topic)
        direct_two = subscribed(two, world.token, topic)
        balanced = subscribed(lb, world.token, topic)
        sse = urllib.request.urlopen(
            urllib.request.Request(
                f"{lb.http}/api/tasks/{task.public_id}/events",
                headers={"Authorization": f"Bearer {world.token}"},
            ),
            timeout=30,
        )
        try:
            assert sse.headers["Content-Type"].startswith("text/event-stream")
            assert sse.readline() == b"retry: 3000\n"
            status, claimed = lb.call(
                "POST",
                f"/api/harness/tasks/{task.public_id}/claim",
                world.key,
                {"app_id": world.app.app_id},
            )
            assert status == 200, claimed
            steps = f"/api/harness/tasks/{task.public_id}/steps"
            body = {"run_id": claimed["run_id"], "phase": "coding_agent"}
            # Posted to process one: heard on process two and through haproxy.
            status, _ = one.call("POST", steps, world.key, {**body, "user_message": "on one"})
            assert status == 201
            first = step_heard(direct_two, "on one")
            step_heard(balanced, "on one")
            step_heard(direct_one, "on one")
            # Posted to process two: heard on process one.
            status, _ = two.call("POST", steps, world.key, {**body, "user_message": "on two"})
            assert status == 201
            second = step_heard(direct_one, "on two")
            step_heard(balanced, "on two")
            step_heard(direct_two, "on two")
            assert second["seq"] > first["seq"]
            # SSE through haproxy: both steps, at once (no buffering).
            started, lines = time.monotonic(), []
            while sum(b"on two" in line for line in lines) == 0:
                lines.append(sse.readline())
            assert time.monotonic() - started < 10
            assert any(b"on one" in line for line in lines)
        finally:
            sse.close()
            for ws in (direct_one, direct_two, balanced):
                ws.close()
        assert list(
            Step.objects.filter(run__public_id=claimed["run_id"])
            .order_by("id")
            .values_list("user_message", flat=True)
        ) == ["on one", "on two"]

        sign_in_and_load(lb.http, task.public_id, "Cluster task")
        with urllib.request.urlopen(f"{lb.http}/readyz", timeout=10) as response:
            assert json.loads(response.read())["status"] == "ok"

        # One metrics directory: both processes report the steps of both.
        assert metric(one, "ether_steps_total") == metric(two, "ether_steps_total") == 2.0

        # The workers run once each, beside the servers: the ones that beat did so from
        # the launcher's one process of each (sweep_verifications keeps no heartbeat).
        pids = run.state["pids"]
        beats = dict(WorkerHeartbeat.objects.values_list("name", "pid"))
        assert beats == {
            "sweep_leases": pids["sweep_leases"],
            "send_webhooks": pids["send_webhooks"],
        }
        assert (
            Path(f"/proc/{pids['sweep_verifications']}/cmdline")
            .read_bytes()
            .endswith(b"sweep_verifications\x00")
        )

        # A process that stops answering loses its traffic to the other (health checks),
        # and gets it back when it answers again.
        frozen = pids[f"ether@{two.port}"]
        subprocess.run(["kill", "-STOP", str(frozen)], check=True)
        try:
            wait_for(lambda: server_states(run)["ether2"] == "DOWN")
            for _ in range(6):
                with urllib.request.urlopen(f"{lb.http}/healthz", timeout=5) as response:
                    assert response.status == 200
        finally:
            subprocess.run(["kill", "-CONT", str(frozen)], check=True)
        wait_for(lambda: server_states(run)["ether2"] == "UP")
    assert run.balancer.process.returncode == 0


def test_more_than_one_process_without_postgres_and_redis_is_refused(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "DATABASE_URL": "", "REDIS_URL": "", "DJANGO_DEBUG": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "ether_site.cluster", "--workers", "2", "--var", str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "needs Postgres and Redis" in done.stderr
    assert "make run WORKERS=N DATABASE_URL=postgres://" in done.stderr
    assert not (tmp_path / "cluster").exists()  # nothing was started
