"""Connections that arrive together are all taken, not dropped at the kernel's door.

Twisted listens with a backlog of 50: past that, the kernel drops a new connection's SYN
and the client waits 1 s (then 3 s) to try again. `python -m ether_site.serve` (what
`make run` and the cluster start) listens with ``ETHER_LISTEN_BACKLOG`` (1,024) instead.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess

import pytest

from ether_site.serve import LISTEN_BACKLOG, listen_backlog, with_backlog
from tests.servers import daphne

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [
        ("tcp:port=8080:interface=127.0.0.1", "tcp:port=8080:interface=127.0.0.1:backlog=1024"),
        ("tcp:port=8080:backlog=64", "tcp:port=8080:backlog=64"),  # its own, kept
        ("unix:/run/ether.sock", "unix:/run/ether.sock"),
        ("fd:fileno=3", "fd:fileno=3"),
    ],
)
def test_a_tcp_endpoint_gets_the_backlog_unless_it_names_one(endpoint, expected):
    assert with_backlog(endpoint, 1024) == expected


@pytest.mark.parametrize("value", ["lots", "0", "-5", "1.5"])
def test_a_backlog_that_is_not_a_positive_whole_number_stops_the_server(monkeypatch, value):
    monkeypatch.setenv("ETHER_LISTEN_BACKLOG", value)
    with pytest.raises(SystemExit, match="ETHER_LISTEN_BACKLOG"):
        listen_backlog()


def test_without_the_setting_the_backlog_is_1024(monkeypatch):
    monkeypatch.delenv("ETHER_LISTEN_BACKLOG", raising=False)
    assert listen_backlog() == LISTEN_BACKLOG == 1024


def connected_while_stopped(port: int, process: subprocess.Popen[bytes], count: int) -> int:
    """Connections the kernel completes for a server that accepts none (stopped): those
    its listen backlog holds. Stops at the first that times out."""
    sockets: list[socket.socket] = []
    process.send_signal(signal.SIGSTOP)
    try:
        for _ in range(count):
            client = socket.socket()
            client.settimeout(0.5)
            sockets.append(client)
            try:
                client.connect(("127.0.0.1", port))
            except OSError:
                break  # its SYN was dropped: the backlog is full
        return sum(1 for s in sockets if _is_connected(s))
    finally:
        process.send_signal(signal.SIGCONT)
        for client in sockets:
            with contextlib.suppress(OSError):
                client.close()


def _is_connected(client: socket.socket) -> bool:
    try:
        client.getpeername()
    except OSError:
        return False
    return True


def test_300_connections_at_once_are_all_held_for_a_busy_server(tmp_path):
    with daphne(tmp_path) as server:
        assert connected_while_stopped(server.port, server.process, 300) == 300


def test_the_backlog_is_a_setting(tmp_path):
    with daphne(tmp_path, ETHER_LISTEN_BACKLOG="20") as server:
        held = connected_while_stopped(server.port, server.process, 300)
    assert 20 <= held <= 22  # the kernel holds backlog + 1 (Linux)
