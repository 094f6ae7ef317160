"""Faults on real daphne processes: a server SIGKILLed with sockets open and a request in
flight, and the channel layer's Redis stopped and started again mid-run. The harness
retries with the same Idempotency-Key; nothing is lost and nothing is delivered twice."""

from __future__ import annotations

import json
import signal
import socket
import urllib.error
import urllib.request
from typing import Any

import pytest
from websockets.sync.client import connect

from delivery.models import Delivery
from tasks.models import Event, Step
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
