"""Faults on real daphne processes: a server SIGKILLed with sockets open and a request in
flight, the channel layer's Redis stopped and started again mid-run, and (on Postgres)
the server's database connections killed mid-transaction and while idle in its pool. The
harness retries with the same Idempotency-Key; nothing is lost and nothing is delivered
twice."""

from __future__ import annotations

import concurrent.futures
import json
import signal
import socket
import time
import urllib.error
import urllib.request
import uuid
from typing import Any

import pytest
from django.db import connection
from websockets.sync.client import connect

from delivery.models import Delivery
from tasks.models import Event, Step, Task
from tests.helpers import raw_connection, stored
from tests.servers import Server, daphne, free_port
from tests.tasks.test_realtime_server import REDIS_SERVER, private_redis

pytestmark = pytest.mark.django_db(transaction=True)


def post(server: Server, path: str, secret: str, body: Any, key: str) -> tuple[int, Any]:
    request = urllib.request.Request(
        server.http + path,
        data=json.dumps(body).encode(),
        method="POST",
        headers={
            "Authorization": f"Bearer {secret}",
            "Content-Type": "application/json",
            "Idempotency-Key": key,
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def send_without_waiting(server: Server, path: str, secret: str, body: Any, key: str) -> None:
    """Writes a whole request to the socket and leaves before the answer: the server is
    killed while it may be anywhere in that request."""
    payload = json.dumps(body).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {secret}\r\n"
        f"Content-Type: application/json\r\nIdempotency-Key: {key}\r\n"
        f"Content-Length: {len(payload)}\r\n\r\n"
    ).encode()
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    sock.sendall(head + payload)
    sock.close()


def assert_gapless(task: Any) -> None:
    for topic in set(Event.objects.filter(task=task).values_list("topic", flat=True)):
        seqs = list(Event.objects.filter(topic=topic).order_by("seq").values_list("seq", flat=True))
        assert seqs == list(range(1, len(seqs) + 1)), (topic, seqs)


def test_sigkilled_server_loses_nothing_when_the_harness_retries_on_another(world, tmp_path):
    task = world.task()
    base = f"/api/harness/tasks/{task.public_id}"
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with daphne(tmp_path / "a") as first, daphne(tmp_path / "b") as second:
        status, claim = post(first, f"{base}/claim", world.key, {"app_id": "builder"}, "claim-1")
        assert status == 200, claim
        run_id = claim["run_id"]
        steps = [
            {"run_id": run_id, "phase": "coding_agent", "user_message": f"step {n}"}
            for n in range(6)
        ]
        for n in range(3):
            assert post(first, f"{base}/steps", world.key, steps[n], f"step-{n}")[0] == 201
        # Open sockets on the doomed process: a WebSocket subscriber and a keep-alive.
        ws = connect(f"{first.ws}/api/realtime?token={world.token}", open_timeout=10)
        ws.send(json.dumps({"action": "subscribe", "topics": [f"tasks/{task.public_id}"]}))
        assert json.loads(ws.recv(timeout=10))["type"] == "subscribed"
        send_without_waiting(first, f"{base}/steps", world.key, steps[3], "step-3")
        first.process.send_signal(signal.SIGKILL)
        first.process.wait(timeout=10)
        ws.close()
        # The harness never saw an answer for step 3: it retries everything unanswered on
        # the second process with the same keys, then submits, then retries the submit.
        for n in range(3, 6):
            status, body = post(second, f"{base}/steps", world.key, steps[n], f"step-{n}")
            assert status == 201, body
        result = {
            "run_id": run_id,
            "status": "submitted",
            "agent_status": "Opened PR #7",
            "artifact": {
                "pr": {
                    "number": 7,
                    "branch": "ether/fix",
                    "url": f"https://github.com/{task.repo.full_name}/pull/7",
                }
            },
        }
        first_result = post(second, f"{base}/result", world.key, result, "result-1")
        again = post(second, f"{base}/result", world.key, result, "result-1")
        assert first_result[0] == 200, first_result
        assert again == first_result
    messages = list(Step.objects.filter(run__task=task).values_list("user_message", flat=True))
    assert sorted(messages) == [f"step {n}" for n in range(6)]
    assert Delivery.objects.filter(task=task).count() == 1
    assert_gapless(task)
    names = list(Event.objects.filter(task=task).values_list("name", flat=True))
    assert names.count("os.harness.step") == 6
    assert names.count("task.delivered") == 1


@pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not installed")
def test_redis_stopped_and_restarted_mid_run_loses_no_write(world, tmp_path):
    task = world.task()
    base = f"/api/harness/tasks/{task.public_id}"
    port = free_port()
    redis_url = f"redis://127.0.0.1:{port}/0"
    with private_redis(port, tmp_path) as redis, daphne(tmp_path, redis_url=redis_url) as server:
        run_id = post(server, f"{base}/claim", world.key, {"app_id": "builder"}, "c")[1]["run_id"]

        def step(n: int) -> int:
            body = {"run_id": run_id, "phase": "coding_agent", "user_message": f"step {n}"}
            status, answer = post(server, f"{base}/steps", world.key, body, f"s{n}")
            assert status == 201, answer
            return answer["seq"]

        step(0)
        redis.terminate()
        redis.wait(timeout=10)
        # Redis down: writes still answer (events are persisted; publishing is best effort,
        # and the rate limiter lets requests through when its cache is gone).
        step(1)
        step(2)
        with private_redis(port, tmp_path):
            step(3)
            with connect(f"{server.ws}/api/realtime?token={world.token}", open_timeout=10) as ws:
                ws.send(
                    json.dumps(
                        {
                            "action": "subscribe",
                            "topics": [f"tasks/{task.public_id}"],
                            "since": {f"tasks/{task.public_id}": 0},
                        }
                    )
                )
                frames = []
                while not any(f.get("user_message") == "step 3" for f in frames):
                    frames.append(json.loads(ws.recv(timeout=15)))
            step(4)
    seen = [f["user_message"] for f in frames if f.get("event") == "os.harness.step"]
    assert seen == [f"step {n}" for n in range(4)]
    assert Step.objects.filter(run__task=task).count() == 5
    assert_gapless(task)


# --- Postgres connections killed under the server -------------------------------------

needs_postgres = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="pg_terminate_backend kills a Postgres server backend; SQLite has no connection "
    "to kill (its locked-database 503 is tested in tests/corpus/test_errors.py)",
)


def send(
    server: Server, method: str, path: str, secret: str, body: Any = None, key: str | None = None
) -> tuple[int, dict[str, str], Any]:
    """One request: the status, the headers and the parsed body."""
    headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
    if key is not None:
        headers["Idempotency-Key"] = key
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(server.http + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


def backends(app_name: str, *, waiting: bool = False) -> list[tuple[int, str]]:
    """The server's backends (pid, query), told apart from the test's own by the
    ``application_name`` the server was started with (libpq reads ``PGAPPNAME``)."""
    sql = "SELECT pid, query FROM pg_stat_activity WHERE datname = %s AND application_name = %s"
    if waiting:
        sql += " AND wait_event_type = 'Lock'"
    with connection.cursor() as cursor:
        cursor.execute(
            sql + " AND pid <> pg_backend_pid()", [connection.settings_dict["NAME"], app_name]
        )
        return list(cursor.fetchall())


def terminate(pids: list[int]) -> None:
    with connection.cursor() as cursor:
        for pid in pids:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    # pg_terminate_backend only signals: wait until the backends are really gone.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)", [pids])
            if cursor.fetchone()[0] == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"backends {pids} outlived pg_terminate_backend")


def wait_for_blocked(app_name: str) -> tuple[int, str]:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        blocked = backends(app_name, waiting=True)
        if blocked:
            assert len(blocked) == 1, blocked
            return blocked[0]
        time.sleep(0.05)
    raise AssertionError("the server never waited on the row lock")


def step_killed_while_blocked(
    server: Server, app_name: str, task: Any, key: str, step: dict[str, Any], query: str
) -> tuple[int, dict[str, str], Any]:
    """Posts ``step`` (Idempotency-Key ``s1``) while the test holds the task's row lock,
    checks the server's blocked statement starts with ``query``, kills that backend,
    releases the lock, and returns the step's answer."""
    holder = raw_connection()
    try:
        # The row lock every harness write takes first (leases.locked_task, the lane's guard).
        holder.execute(f"SELECT id FROM {Task._meta.db_table} WHERE id = %s FOR UPDATE", [task.pk])
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            path = f"/api/harness/tasks/{task.public_id}/steps"
            answer = pool.submit(send, server, "POST", path, key, step, "s1")
            pid, blocked = wait_for_blocked(app_name)
            assert blocked.startswith(query), blocked
            terminate([pid])
            holder.rollback()
            return answer.result(timeout=60)
    finally:
        holder.close()


@needs_postgres
def test_backend_killed_mid_write_is_a_clean_503_and_the_same_key_then_runs_once(world, tmp_path):
    task = world.task()
    base = f"/api/harness/tasks/{task.public_id}"
    app_name = f"ether-flt-{uuid.uuid4().hex[:12]}"
    # A lock timeout far beyond the test, so the kill (not the timeout) ends the wait. The
    # full path (DRF view) is the one that answers 503: the step fast lane hands a write
    # its database failed to the full path (the next test).
    with daphne(
        tmp_path, PGAPPNAME=app_name, ETHER_DB_LOCK_TIMEOUT="120", ETHER_STEP_FAST_LANE="0"
    ) as server:
        status, _, claim = send(server, "POST", f"{base}/claim", world.key, {"app_id": "builder"})
        assert status == 200, claim
        step = {"run_id": claim["run_id"], "phase": "coding_agent", "user_message": "killed"}
        before = stored()
        # The locking read of the task row (its text is cut at 1 kB, before FOR UPDATE).
        status, headers, body = step_killed_while_blocked(
            server, app_name, task, world.key, step, f'SELECT "{Task._meta.db_table}"."id"'
        )
        assert status == 503, body
        assert headers["Content-Type"].startswith("application/problem+json")
        assert body["code"] == "database_unavailable" and body["status"] == 503
        assert int(headers["Retry-After"]) >= 1
        assert stored() == before
        # The process is healthy: the dead connection left the pool with the failed request.
        status, _, execution = send(server, "GET", f"{base}/execution", world.key)
        assert status == 200, execution
        # The harness retries with the same key: the step is stored once, replayed after.
        status, headers, first = send(server, "POST", f"{base}/steps", world.key, step, "s1")
        assert status == 201, first
        assert "Idempotent-Replayed" not in headers
        status, headers, again = send(server, "POST", f"{base}/steps", world.key, step, "s1")
        assert (status, again) == (201, first)
        assert headers["Idempotent-Replayed"] == "true"
        assert "Traceback" not in server.output(), server.output()
    assert list(Step.objects.filter(task=task).values_list("user_message", flat=True)) == ["killed"]
    names = list(Event.objects.filter(task=task).values_list("name", flat=True))
    assert names.count("os.harness.step") == 1
    assert_gapless(task)


@needs_postgres
def test_backend_killed_under_the_step_lane_hands_the_step_to_the_full_path_once(world, tmp_path):
    """The lane's write dies with its backend: it wrote nothing, the full path (a new
    pooled connection) stores the step once, and the same key then replays it."""
    task = world.task()
    base = f"/api/harness/tasks/{task.public_id}"
    app_name = f"ether-flt-{uuid.uuid4().hex[:12]}"
    with daphne(tmp_path, PGAPPNAME=app_name, ETHER_DB_LOCK_TIMEOUT="120") as server:
        status, _, claim = send(server, "POST", f"{base}/claim", world.key, {"app_id": "builder"})
        assert status == 200, claim
        step = {"run_id": claim["run_id"], "phase": "coding_agent", "user_message": "killed"}
        # The lane's locking read of the task and run rows (tasks/services/steps_direct.py,
        # _guard).
        status, headers, first = step_killed_while_blocked(
            server,
            app_name,
            task,
            world.key,
            step,
            f"SELECT t.id, r.id, r.lease_expires_at FROM {Task._meta.db_table} t ",
        )
        assert status == 201, first
        status, headers, again = send(server, "POST", f"{base}/steps", world.key, step, "s1")
        assert (status, again) == (201, first)
        assert headers["Idempotent-Replayed"] == "true"
    assert list(Step.objects.filter(task=task).values_list("user_message", flat=True)) == ["killed"]
    names = list(Event.objects.filter(task=task).values_list("name", flat=True))
    assert names.count("os.harness.step") == 1
    assert_gapless(task)


@needs_postgres
def test_pooled_connections_killed_while_idle_are_replaced_before_the_next_request(world, tmp_path):
    task = world.task()
    base = f"/api/harness/tasks/{task.public_id}"
    app_name = f"ether-flt-{uuid.uuid4().hex[:12]}"
    with daphne(tmp_path, PGAPPNAME=app_name) as server:
        status, _, claim = send(server, "POST", f"{base}/claim", world.key, {"app_id": "builder"})
        assert status == 200, claim
        messages = []
        for n in range(3):
            # Every backend of the server dies between two requests (a Postgres restart, a
            # failover, an idle-connection reaper): the next request must not see it.
            idle = [pid for pid, _ in backends(app_name)]
            assert idle, "the server's pool holds no connection"
            terminate(idle)
            message = f"after kill {n}"
            step = {"run_id": claim["run_id"], "phase": "coding_agent", "user_message": message}
            status, _, body = send(server, "POST", f"{base}/steps", world.key, step, f"s{n}")
            assert status == 201, body
            messages.append(message)
        assert "Traceback" not in server.output(), server.output()
    assert (
        list(Step.objects.filter(task=task).order_by("seq").values_list("user_message", flat=True))
        == messages
    )
    assert_gapless(task)
