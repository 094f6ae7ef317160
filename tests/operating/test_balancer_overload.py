"""haproxy in front of processes that are all busy (``make run WORKERS=N``'s config,
deploy/haproxy/ether.cfg.in): a process is given at most 64 requests at once, and a
request beyond that waits in haproxy at most 250 ms, then is refused with Ether's own
``503 overloaded`` problem document and ``Retry-After`` (issue 18, goal 3); past 64
such waiting requests a process, at once.

The backend here accepts connections and never answers, as a process too busy to read
its requests; so this runs without Postgres or Redis, wherever haproxy is installed.
"""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest

from ether_site.cluster import haproxy_binary, render_config
from tests.servers import free_port, haproxy_stats

HAPROXY = haproxy_binary()
pytestmark = pytest.mark.skipif(HAPROXY is None, reason="haproxy is not installed")

PER_PROCESS = 64  # backend ether's maxconn


@contextmanager
def never_answers() -> Iterator[int]:
    """A port that answers haproxy's health check (so the process stays in rotation, and
    its backup line, which has 64 slots of its own, is never used) and leaves every
    other request waiting, as a process too busy to get to them."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=1024)
    held: list[socket.socket] = []
    stop = threading.Event()

    def serve(conn: socket.socket) -> None:
        with suppress(OSError):
            conn.settimeout(10)
            if conn.recv(4096).startswith(b"GET /readyz "):
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                conn.close()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            with suppress(TimeoutError, OSError):
                conn = listener.accept()[0]
                held.append(conn)
                threading.Thread(target=serve, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(timeout=5)
        for conn in [*held, listener]:
            conn.close()


@contextmanager
def haproxy(tmp_path: Path, backend: int) -> Iterator[int]:
    port = free_port()
    config = tmp_path / "haproxy.cfg"
    config.write_text(
        render_config(
            host="127.0.0.1", port=port, backends=[backend], stats_socket=tmp_path / "stats"
        )
    )
    assert HAPROXY is not None
    # Its warnings to a file: a pipe nobody reads fills up and stops haproxy.
    with (tmp_path / "haproxy.log").open("wb") as log:
        process = subprocess.Popen(
            [HAPROXY, "-db", "-f", str(config)], stdout=subprocess.DEVNULL, stderr=log
        )
    try:
        deadline = time.monotonic() + 15
        while True:
            with suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
            assert process.poll() is None, (tmp_path / "haproxy.log").read_text()
            assert time.monotonic() < deadline, "haproxy did not listen"
            time.sleep(0.05)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


def request(port: int, path: str, timeout: float) -> tuple[int, dict[str, str], bytes, float]:
    started = time.monotonic()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("POST", path, body=b"{}", headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        headers = {k.lower(): v for k, v in response.getheaders()}
        return response.status, headers, response.read(), time.monotonic() - started
    finally:
        connection.close()


def opened(port: int, path: str) -> socket.socket:
    """A GET of ``path`` sent and left waiting for its answer."""
    client = socket.create_connection(("127.0.0.1", port), timeout=10)
    client.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    return client


@contextmanager
def slots_taken(port: int) -> Iterator[None]:
    """The process's 64 request slots, taken by requests it never answers."""
    waiting = [opened(port, "/api/tasks") for _ in range(PER_PROCESS)]
    try:
        time.sleep(0.5)  # all 64 forwarded
        yield
    finally:
        for client in waiting:
            client.close()


def server_status(stats: Path, backend: str, server: str) -> str:
    """haproxy's view of one server line: UP, DOWN, …"""
    for row in haproxy_stats(stats):
        if (row["pxname"], row["svname"]) == (backend, server):
            return row["status"]
    raise AssertionError(f"no {backend}/{server} in haproxy's stats")


def test_past_what_the_processes_take_haproxy_refuses_fast_with_our_problem(tmp_path):
    with never_answers() as backend, haproxy(tmp_path, backend) as port, slots_taken(port):
        status, headers, body, elapsed = request(port, "/api/harness/tasks/t/steps", 10)
        # The process was in rotation: the refusal is the limit's, not a failed check's.
        assert server_status(tmp_path / "stats", "ether", "ether1").startswith("UP")
    assert status == 503
    assert headers["content-type"] == "application/problem+json"
    assert headers["retry-after"] == "1"
    assert headers["cache-control"] == "no-store"
    problem = json.loads(body)
    assert (problem["status"], problem["code"]) == (503, "overloaded")
    assert problem["type"] == "https://ether.dev/problems/overloaded"
    # The queue's 250 ms, not the server timeout's 60 s.
    assert 0.2 <= elapsed < 2.0


def _stat(stats: Path, proxy: str, server: str, field: str) -> int:
    for row in haproxy_stats(stats):
        if (row["pxname"], row["svname"]) == (proxy, server):
            return int(row[field] or 0)
    raise AssertionError(f"no {proxy}/{server} in haproxy's stats")


def test_past_the_queue_s_length_a_request_is_refused_as_it_arrives(tmp_path):
    """64 requests already wait for the process: the next one is refused at once, not
    after the queue's 250 ms (under a steady overload, waiting out the time limit is what
    each request taken had done first)."""
    with never_answers() as backend, haproxy(tmp_path, backend) as port, slots_taken(port):
        queued = [opened(port, "/api/tasks") for _ in range(PER_PROCESS)]
        try:
            status, headers, body, elapsed = request(port, "/api/harness/tasks/t/steps", 10)
            denied = _stat(tmp_path / "stats", "ether", "FRONTEND", "dreq")
            # The 64 were queued, and leave the queue after its 250 ms with the 503.
            answers = []
            for client in queued:
                client.settimeout(5)
                answers.append(client.recv(4096).split(b"\r\n", 1)[0])
        finally:
            for client in queued:
                client.close()
    assert (status, headers["retry-after"], json.loads(body)["code"]) == (503, "1", "overloaded")
    assert denied == 1  # by the length limit, not by the queue's time limit
    assert elapsed < 0.2, elapsed
    assert set(answers) == {b"HTTP/1.1 503 Service Unavailable"}


@pytest.mark.parametrize(
    "path",
    ["/api/tasks/t/events", "/api/activity/events", "/api/realtime", "/api/harness/claim-next"],
)
def test_streams_do_not_count_against_the_limit(tmp_path, path):
    """Server-sent events, the realtime WebSocket and the claim-next long poll stay open
    for minutes to hours: they have their own backend, so 64 of them cannot take a
    process's request slots, and with the slots full they are still forwarded (here to a
    server that never answers: no answer at all, rather than haproxy's 503)."""
    with never_answers() as backend, haproxy(tmp_path, backend) as port, slots_taken(port):
        stream = opened(port, path)
        stream.settimeout(1.5)
        try:
            with pytest.raises(TimeoutError):
                stream.recv(1024)  # forwarded, and waiting on the process
        finally:
            stream.close()
