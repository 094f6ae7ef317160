"""The realtime hub on real daphne processes: what a frontend sees over a real socket.

These start ``daphne`` on 127.0.0.1 against the test database (``tests/servers.py``) and
talk to it the way users do: harness writes over HTTP, browsers over WebSocket and SSE.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import struct
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from websockets.sync.client import ClientConnection, connect

from tasks.models import Event, Result, Step
from tests.servers import Server, daphne, free_port

pytestmark = pytest.mark.django_db(transaction=True)


# --- clients ------------------------------------------------------------------------------
def claim(server: Server, world: Any, task: Any) -> str:
    status, body = server.call(
        "POST",
        f"/api/harness/tasks/{task.public_id}/claim",
        world.key,
        {"app_id": world.app.app_id},
    )
    assert status == 200, body
    return body["run_id"]


def step(server: Server, world: Any, task: Any, run_id: str, message: str) -> int:
    status, body = server.call(
        "POST",
        f"/api/harness/tasks/{task.public_id}/steps",
        world.key,
        {"run_id": run_id, "phase": "coding_agent", "user_message": message},
    )
    assert status == 201, body
    return body["seq"]


@contextmanager
def websocket(server: Server, secret: str) -> Iterator[ClientConnection]:
    with connect(f"{server.ws}/api/realtime?token={secret}", open_timeout=10) as ws:
        yield ws


def frame(ws: ClientConnection, timeout: float = 30) -> dict[str, Any]:
    return json.loads(ws.recv(timeout=timeout))


def subscribe(ws: ClientConnection, topic: str, since: int | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"action": "subscribe", "topics": [topic]}
    if since is not None:
        message["since"] = {topic: since}
    ws.send(json.dumps(message))
    answer = frame(ws)
    assert answer["type"] == "subscribed", answer
    return answer


def steps_until(ws: ClientConnection, message: str) -> list[dict[str, Any]]:
    """Every frame up to and including the timeline entry of the step that says ``message``
    (a step publishes its narration, then its timeline entry)."""
    frames = []
    while True:
        item = frame(ws)
        frames.append(item)
        if item["type"] == "task.timeline" and item["summary"] == message:
            return frames


def assert_consecutive(frames: list[dict[str, Any]], after: int) -> None:
    assert [f["seq"] for f in frames] == list(range(after + 1, after + 1 + len(frames)))


# --- one server: the new user's two terminals ------------------------------------------------
def test_steps_reach_a_websocket_client_live_and_since_loses_nothing(world, task, tmp_path):
    topic = f"tasks/{task.public_id}"
    with daphne(tmp_path) as server:
        run_id = claim(server, world, task)
        with websocket(server, world.token) as ws:
            subscribe(ws, topic)
            step(server, world, task, run_id, "Reading the repository")
            live = steps_until(ws, "Reading the repository")
            assert {"os.harness.step", "task.timeline"} == {f["type"] for f in live}
            narration = next(f for f in live if f["type"] == "os.harness.step")
            assert narration["task_id"] == task.public_id and narration["run_id"] == run_id
            assert {"event", "type", "topic", "seq", "ts", "task_id", "phase"} <= set(narration)
            last = live[-1]["seq"]

        # Disconnected: the harness keeps working.
        step(server, world, task, run_id, "Writing the fix")
        step(server, world, task, run_id, "Running the tests")

        with websocket(server, world.token) as ws:
            answer = subscribe(ws, topic, since=last)
            assert answer["recovered"] == {topic: True}
            step(server, world, task, run_id, "Opening the pull request")
            frames = steps_until(ws, "Opening the pull request")
    assert_consecutive(frames, after=last)
    messages = [f["user_message"] for f in frames if f["type"] == "os.harness.step"]
    assert messages == ["Writing the fix", "Running the tests", "Opening the pull request"]
    assert frames[-1]["seq"] == Event.objects.filter(topic=topic).order_by("-seq")[0].seq


def test_sse_follows_the_log_live_on_a_real_server(world, task, tmp_path):
    with daphne(tmp_path, ETHER_SSE_POLL_SECONDS="0.1") as server:
        run_id = claim(server, world, task)
        after = Event.objects.filter(topic=f"tasks/{task.public_id}").count()
        request = urllib.request.Request(
            f"{server.http}/api/tasks/{task.public_id}/events",
            headers={"Authorization": f"Bearer {world.token}", "Last-Event-ID": str(after)},
        )
        with urllib.request.urlopen(request, timeout=20) as stream:
            assert stream.headers["Content-Type"].startswith("text/event-stream")
            assert stream.headers["Cache-Control"] == "no-cache"
            step(server, world, task, run_id, "Streaming over SSE")
            lines: list[str] = []
            # The step's narration, then its timeline entry: two events.
            while "".join(lines).count("Streaming over SSE") < 2:
                lines.append(stream.readline().decode())
    ids = [int(line[4:]) for line in lines if line.startswith("id: ")]
    assert ids == [after + 1, after + 2]
    assert "event: os.harness.step\n" in lines


# --- scale-out: two processes on one Redis -----------------------------------------------------
needs_redis = pytest.mark.skipif(
    not settings.REDIS_URL, reason="two processes share events only through Redis (REDIS_URL)"
)


@needs_redis
def test_a_step_posted_to_one_process_reaches_a_client_on_another(world, task, tmp_path):
    topic = f"tasks/{task.public_id}"
    with daphne(tmp_path) as a, daphne(tmp_path) as b:
        run_id = claim(a, world, task)
        with websocket(b, world.token) as ws:
            subscribe(ws, topic)
            seq = step(a, world, task, run_id, "Posted to process A")
            frames = steps_until(ws, "Posted to process A")
    assert [f["seq"] for f in frames] == [seq, seq + 1]
    assert frames[0]["user_message"] == "Posted to process A" and frames[0]["topic"] == topic


# --- Redis going away --------------------------------------------------------------------------
REDIS_SERVER = shutil.which("redis-server")


@contextmanager
def private_redis(port: int, workdir: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A Redis of this test's own, so stopping it disturbs nobody else."""
    process = subprocess.Popen(
        [
            REDIS_SERVER or "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield process
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not installed")
def test_with_redis_down_writes_succeed_and_a_reconnecting_client_replays_them(
    world, task, tmp_path
):
    topic = f"tasks/{task.public_id}"
    port = free_port()
    redis_url = f"redis://127.0.0.1:{port}/0"
    with private_redis(port, tmp_path) as redis, daphne(tmp_path, redis_url=redis_url) as server:
        run_id = claim(server, world, task)
        with websocket(server, world.token) as ws:
            subscribe(ws, topic)
            step(server, world, task, run_id, "Before the outage")
            seen = steps_until(ws, "Before the outage")[-1]["seq"]

        redis.terminate()
        redis.wait(timeout=10)
        # The harness API does not notice: every write is in the log.
        step(server, world, task, run_id, "During the outage")
        status, body = server.call(
            "POST",
            f"/api/harness/tasks/{task.public_id}/result",
            world.key,
            {
                "run_id": run_id,
                "status": "no_changes",
                "agent_status": "done",
                "no_changes_reason": "Already fixed upstream.",
            },
        )
        assert status == 200, body
        assert Result.objects.filter(task=task).count() == 1
        assert Step.objects.filter(task=task).count() == 2
        assert "could not publish" in server.output()

        with private_redis(port, tmp_path), websocket(server, world.token) as ws:
            answer = subscribe(ws, topic, since=seen)
            assert answer["recovered"] == {topic: True}
            end = Event.objects.filter(topic=topic).order_by("-seq")[0].seq
            frames = [frame(ws) for _ in range(end - seen)]
    assert_consecutive(frames, after=seen)
    assert "During the outage" in [f.get("user_message") for f in frames]
    assert "result" in [f.get("kind") for f in frames if f["type"] == "task.timeline"]


# --- a client that stops reading ----------------------------------------------------------------
def raw_subscribe(server: Server, secret: str, topic: str) -> socket.socket:
    """A WebSocket by hand, with a tiny receive buffer, that will never read again."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", server.port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /api/realtime?token={secret} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    payload = json.dumps({"action": "subscribe", "topics": [topic]}).encode()
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    sock.sendall(bytes([0x81, 0x80 | len(payload)]) + mask + masked)
    return sock


def close_code(sock: socket.socket) -> int | None:
    """Reads what the server left in the socket; the close frame's code, if it got there."""
    sock.settimeout(5)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except (TimeoutError, ConnectionResetError):
        pass
    marker = data.rfind(b"\x88\x02")
    return struct.unpack("!H", data[marker + 2 : marker + 4])[0] if marker >= 0 else None


def test_a_client_that_stops_reading_is_closed_and_costs_bounded_memory(world, task, tmp_path):
    topic = f"tasks/{task.public_id}"
    limit = 256 * 1024
    big = "é" * 3990  # ~24 KB on the wire: JSON escapes it as \u00e9
    with daphne(tmp_path, ETHER_WS_MAX_BACKLOG_BYTES=str(limit)) as server:
        run_id = claim(server, world, task)
        stalled = raw_subscribe(server, world.token, topic)
        with websocket(server, world.token) as reader:
            subscribe(reader, topic)

            def push(n: int) -> None:
                step(server, world, task, run_id, f"{n} {big}")
                # The healthy reader keeps up and is never held back by the stalled one.
                steps_until(reader, f"{n} {big}")

            # Until the stalled socket's kernel buffers and the backlog limit are full
            # (about 22 steps here; more when the machine is busy).
            closed: list[str] = []
            for n in range(200):
                push(n)
                closed = [
                    line for line in server.output().splitlines() if "stopped reading" in line
                ]
                if closed:
                    break
            assert len(closed) == 1, server.output()[-2000:]
            unsent = int(closed[0].split("(")[1].split()[0])
            # Checked before each frame: at most one frame (~24 KB) over the limit.
            assert limit < unsent <= limit + 64 * 1024

            # From now on the stalled client costs nothing, however much is published.
            before = server.rss_kib()
            for n in range(1000, 1240):
                push(n)
            grown = server.rss_kib() - before
        code = close_code(stalled)
        stalled.close()
    pushed_kib = 240 * 2 * 24
    # Unbounded, the stalled socket would hold all of it (seen: ~11 MB more RSS).
    assert grown < pushed_kib / 2, (grown, pushed_kib)
    # The close frame sits behind the unread bytes; the server may drop the socket first.
    assert code in (4008, None)
