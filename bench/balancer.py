"""haproxy in front of benchmark servers, with the config ``make run WORKERS=N`` uses
(``deploy/haproxy/ether.cfg.in`` through ``ether_site.cluster.render_config``: leastconn,
``/readyz`` health checks, the same timeouts), so Ether and the baseline pay the same hop.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

from bench.common import OUT, free_port
from ether_site.cluster import haproxy_binary, render_config


def available() -> bool:
    return haproxy_binary() is not None


_running: dict[int, tuple[list[int], str]] = {}


def settle(port: int, timeout: float = 60.0) -> None:
    """Until haproxy on ``port`` has every backend up again: after an overload, the next
    measure starts with every process in the rotation."""
    backends, stats = _running[port]
    _wait_up(port, backends, stats, timeout)


def _wait_up(port: int, backends: list[int], stats: str, timeout: float = 30.0) -> None:
    """Until haproxy listens and has marked every backend UP (its first /readyz)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.socket(socket.AF_UNIX) as sock:
                sock.connect(stats)
                sock.sendall(b"show stat\n")
                raw = b""
                while chunk := sock.recv(65536):
                    raw += chunk
            rows = [line.split(",") for line in raw.decode().splitlines()[1:] if line]
            up = [r for r in rows if r[0] == "ether" and r[1].startswith("ether") and r[17] == "UP"]
            if len(up) == len(backends):
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"haproxy on {port} did not mark {backends} up within {timeout} s")


@contextmanager
def balanced(backends: list[int], label: str) -> Iterator[int]:
    """haproxy on a free port of 127.0.0.1 in front of ``backends``; yields its port."""
    binary = haproxy_binary()
    if binary is None:
        raise RuntimeError("haproxy is not installed (apt-get install haproxy)")
    port = free_port()
    OUT.mkdir(parents=True, exist_ok=True)
    stats = OUT / f"{label}-{port}.sock"
    config = OUT / f"{label}-{port}.cfg"
    config.write_text(
        render_config(host="127.0.0.1", port=port, backends=backends, stats_socket=stats)
    )
    log = (OUT / f"{label}-{port}.log").open("wb")
    process = subprocess.Popen(
        [binary, "-db", "-f", str(config)], stdout=log, stderr=subprocess.STDOUT
    )
    try:
        _wait_up(port, backends, str(stats))
        _running[port] = (backends, str(stats))
        yield port
    finally:
        _running.pop(port, None)
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()
        stats.unlink(missing_ok=True)
