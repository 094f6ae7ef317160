"""claim-next's long poll on real daphne processes (api/longpoll.py): what a harness
loop sees, and what a waiting caller costs the server.

With ``REDIS_URL`` (``make test-postgres``) the two processes share a channel layer and a
waiter is woken by the ping of a task made ready in the other process; without it (SQLite,
in-memory layer) only the process that made the task ready pings, and the periodic
re-check (``ETHER_LONGPOLL_RECHECK_SECONDS``, 1 s) finds the rest.
"""

from __future__ import annotations

import json
import os
import statistics
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from tasks.models import Run, RunStatus, Task
from tests import factories
from tests.helpers import room_in_rate_window
from tests.servers import Server, daphne, database_env, free_port

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/api/harness/claim-next"


def new_task(server: Server, world: Any, title: str) -> str:
    """Made as the browser makes it: POST /api/tasks with the person's credentials."""
    repo = factories.make_repo(world.org) if not hasattr(world, "_repo") else world._repo
    world._repo = repo
    status, body = server.call(
        "POST",
        "/api/tasks",
        world.token,
        {
            "title": title,
            "prompt": "Do it.",
            "definition_of_done": ["done"],
            "project": repo.project.slug,
            "repo": repo.full_name,
        },
    )
    assert status == 201, body
    return body["id"]


class Waiter(threading.Thread):
    """One harness long-polling claim-next once."""

    def __init__(self, server: Server, key: str, app_id: str, wait: int) -> None:
        super().__init__(daemon=True)
        self.server, self.key, self.app_id, self.wait = server, key, app_id, wait
        self.status: int | None = None
        self.body: Any = None
        self.started = self.ended = 0.0

    def run(self) -> None:
        self.started = time.monotonic()
        self.status, self.body = self.server.call(
            "POST", URL, self.key, {"app_id": self.app_id, "wait": self.wait}
        )
        self.ended = time.monotonic()


def finish(waiters: list[Waiter], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    for waiter in waiters:
        waiter.join(timeout=max(0.1, deadline - time.monotonic()))
    assert all(not w.is_alive() for w in waiters), "a waiter hung"


def test_a_waiting_harness_gets_a_task_created_during_its_wait_within_a_second(world, tmp_path):
    with daphne(tmp_path) as server:
        waiter = Waiter(server, world.key, world.app.app_id, wait=20)
        waiter.start()
        time.sleep(2.0)  # it is waiting, between looks
        assert waiter.is_alive()
        task_id = new_task(server, world, "Made in the browser")
        created = time.monotonic()
        finish([waiter])
    assert waiter.status == 200, waiter.body
    assert waiter.body["bundle"]["task_id"] == task_id
    latency = waiter.ended - created
    assert latency < 1.5, f"picked up {latency:.2f} s after it was created"
    assert Run.objects.get(public_id=waiter.body["run_id"]).app == world.app


def test_a_wait_with_nothing_is_204_after_the_wait(world, tmp_path):
    with daphne(tmp_path) as server:
        waiter = Waiter(server, world.key, world.app.app_id, wait=2)
        waiter.start()
        finish([waiter])
        status, _ = server.call("POST", URL, world.key, {"app_id": world.app.app_id, "wait": 0})
    assert waiter.status == 204 and waiter.body is None
    assert 1.9 <= waiter.ended - waiter.started < 4.0
    assert status == 204


def test_64_waiters_on_two_servers_share_10_tasks_each_granted_once(world, tmp_path):
    org = world.org
    keys = []
    for i in range(32):
        app, key = factories.make_app(org, f"solo-{i}")
        keys.append((key, app.app_id))
    for i in range(16):
        app, key = factories.make_app(org, f"pair-{i}")
        keys += [(key, app.app_id), (key, app.app_id)]
    with daphne(tmp_path) as a, daphne(tmp_path) as b:
        waiters = [
            Waiter(a if i % 2 else b, key, app_id, wait=12) for i, (key, app_id) in enumerate(keys)
        ]
        for waiter in waiters:
            waiter.start()
        time.sleep(2.0)
        task_ids = [new_task(a if i % 2 else b, world, f"t{i}") for i in range(10)]
        finish(waiters)
        logs = a.output() + b.output()
    statuses = Counter(w.status for w in waiters)
    assert statuses == {200: 10, 204: 54}, (statuses, logs[-3000:])
    granted = [w.body["bundle"]["task_id"] for w in waiters if w.status == 200]
    assert sorted(granted) == sorted(task_ids)
    for task_id in task_ids:
        task = Task.objects.get(public_id=task_id)
        assert task.lease_epoch == 1
        assert Run.objects.filter(task=task).count() == 1
        assert Run.objects.filter(task=task, status=RunStatus.LIVE).count() == 1
    assert "Traceback" not in logs


def _threads(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise RuntimeError("no Threads line")


SERVER_APPLICATION = "ether-claim-next-test"


def _server_database_env() -> dict[str, str]:
    """The server's database, its Postgres connections named so that they can be counted."""
    env = database_env()
    if connection.vendor == "postgresql":
        env["DATABASE_URL"] += f"?application_name={SERVER_APPLICATION}"
    return env


def _database_connections(pid: int) -> int:
    """Connections the server holds to the test database: its Postgres backends (idle in
    its pool or busy), or its open descriptors on the SQLite file."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
                [SERVER_APPLICATION],
            )
            return cursor.fetchone()[0]
    name = str(connection.settings_dict["NAME"])
    fds = Path(f"/proc/{pid}/fd")
    count = 0
    for fd in fds.iterdir():
        try:
            if os.readlink(fd) == name:
                count += 1
        except OSError:
            continue
    return count


def test_twenty_waiters_hold_no_thread_and_no_database_connection(world, tmp_path):
    """A pool of 2 connections (ETHER_DB_POOL_SIZE on Postgres) and 20 waiters: if a
    waiter held its connection, the others would queue for the pool and answer 503; if
    it held its thread, the server would have 20 more threads while they wait."""
    keys = []
    for i in range(20):
        app, key = factories.make_app(world.org, f"waiter-{i}")
        keys.append((key, app.app_id))
    # No WAL checkpointer: its connection keeps a SHARED lock on the SQLite file, and while
    # any connection of a process holds a lock there SQLite defers closing the descriptors
    # of the connections that close (closing one would drop the process's locks), so the
    # descriptors on the file would count connections once open, not connections open.
    settings = {"ETHER_DB_POOL_SIZE": "2", "ETHER_SQLITE_CHECKPOINT_MS": "0"}
    with daphne(tmp_path, **settings, **_server_database_env()) as server:
        pid = server.process.pid
        server.call("POST", URL, world.key, {"app_id": world.app.app_id})  # warm up
        time.sleep(0.5)
        baseline = _threads(pid)
        waiters = [Waiter(server, key, app_id, wait=5) for key, app_id in keys]
        for waiter in waiters:
            waiter.start()
        time.sleep(1.0)
        threads, connections = [], []
        while time.monotonic() < waiters[0].started + 4.0:
            threads.append(_threads(pid))
            connections.append(_database_connections(pid))
            time.sleep(0.1)
        finish(waiters)
    assert Counter(w.status for w in waiters) == {204: 20}, [w.body for w in waiters]
    assert all(w.ended - w.started >= 4.9 for w in waiters)
    # Most of the time nobody is looking: no thread and no connection is held.
    assert statistics.median(threads) <= baseline + 3, (baseline, threads)
    if connection.vendor == "postgresql":
        # The pool keeps its (at most 2) connections open, idle, between looks; 20 waiters
        # all answered without a 503, so none held one for its wait.
        assert 1 <= max(connections) <= 2, connections
    else:
        assert statistics.median(connections) <= 1, connections


def test_with_the_channel_layer_down_the_re_check_still_hands_out_work(world, tmp_path):
    """Redis unreachable: no ping can arrive (nor be sent), and the waiter finds the task
    at its next periodic look instead of failing."""
    dead = f"redis://127.0.0.1:{free_port()}/0"
    with daphne(tmp_path, redis_url=dead) as server:
        waiter = Waiter(server, world.key, world.app.app_id, wait=15)
        waiter.start()
        time.sleep(2.0)
        task_id = new_task(server, world, "Made while Redis is down")
        created = time.monotonic()
        finish([waiter])
        logs = server.output()
    assert waiter.status == 200, (waiter.body, logs[-2000:])
    assert waiter.body["bundle"]["task_id"] == task_id
    assert waiter.ended - created < 3.0


def _post(server: Server, key: str, body: dict[str, Any], headers: dict[str, str]) -> Any:
    request = urllib.request.Request(
        server.http + URL,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json", **headers},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, dict(response.headers), json.loads(response.read() or b"null")


def test_an_idempotency_key_is_stored_with_the_answer_after_the_wait(world, tmp_path):
    """The waiting looks are not stored under the key (else the second look would replay
    the first one's 204 and end the wait); the claim at the end is, and a retry gets it."""
    body = {"app_id": world.app.app_id, "wait": 15}
    key = {"Idempotency-Key": "loop-42"}
    with daphne(tmp_path) as server:
        answers: list[Any] = []
        thread = threading.Thread(
            target=lambda: answers.append(_post(server, world.key, body, key)), daemon=True
        )
        thread.start()
        time.sleep(2.5)  # two looks or more have found nothing
        task_id = new_task(server, world, "Worth the wait")
        thread.join(timeout=30)
        status, _, claim = answers[0]
        again_status, headers, again = _post(server, world.key, body, key)
    assert status == 200 and claim["bundle"]["task_id"] == task_id
    assert again_status == 200 and headers.get("Idempotent-Replayed") == "true"
    assert again["run_id"] == claim["run_id"]
    assert Run.objects.filter(task__public_id=task_id).count() == 1


def test_a_long_poll_counts_once_against_the_claim_rate_limit(world, tmp_path):
    """Its re-looks are the same request: with ETHER_RATE_CLAIM=2/minute, a 3 s wait (four
    looks or more) and a second call are allowed, the third call is 429."""
    body = {"app_id": world.app.app_id, "wait": 3}
    with daphne(tmp_path, ETHER_RATE_CLAIM="2/minute", REDIS_URL="") as server:
        room_in_rate_window(60, need=20)  # the three calls in one window
        first = server.call("POST", URL, world.key, body)
        second = server.call("POST", URL, world.key, {**body, "wait": 0})
        third = server.call("POST", URL, world.key, {**body, "wait": 0})
    assert first[0] == 204 and second[0] == 204
    assert third[0] == 429 and third[1]["code"] == "throttled"
