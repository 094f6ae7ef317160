"""Real daphne processes (Ether or the baseline app) on 127.0.0.1, always stopped."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bench import common
from bench.common import OUT, PY, django_env, free_port, raise_fd_limit


@dataclass
class Server:
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    command: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def rss_bytes(self) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def _child_limits() -> None:
    raise_fd_limit()


def start_server(
    app: str, env: dict[str, str], *, port: int | None = None, label: str = "server"
) -> Server:
    """One daphne process serving ``app`` (Ether or the baseline) on 127.0.0.1."""
    port = port or free_port()
    OUT.mkdir(parents=True, exist_ok=True)
    log = OUT / f"{label}-{port}.log"
    # The same entry point as `make run`, DEBUG off; -v 0 turns daphne's access log off
    # (one line per request and per WebSocket on stdout would cost more than the baseline).
    command = [PY, "-m", "ether_site.serve", "-v", "0", "-b", "127.0.0.1", "-p", str(port)]
    if profile := os.environ.get("ETHER_BENCH_CPROFILE"):  # investigating: a cProfile dump
        command[1:1] = ["-m", "cProfile", "-o", f"{profile}-{label}-{port}.prof"]
    command += ["--websocket_timeout", "86400", app]
    child_env = django_env(env)
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command,
            cwd=common.SRC,  # read late: use_snapshot() may have moved it
            env=child_env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            preexec_fn=_child_limits,
        )
    server = Server(port=port, process=process, log=log, command=command, env=child_env)
    try:
        wait_listening(server)
    except BaseException:
        server.stop()
        raise
    return server


def wait_listening(server: Server, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"daphne exited early:\n{server.log.read_text(errors='replace')}")
        try:
            with socket.create_connection(("127.0.0.1", server.port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"daphne did not listen within {timeout} s")


@contextmanager
def servers(
    app: str, env: dict[str, str], count: int = 1, label: str = "server"
) -> Iterator[list[Server]]:
    """``count`` daphne processes, always stopped when the block ends."""
    started: list[Server] = []
    try:
        for _ in range(count):
            started.append(start_server(app, env, label=label))
        yield started
    finally:
        for server in started:
            server.stop()


ETHER_APP = "ether_site.asgi:application"
BASELINE_APP = "bench.baseline_app:application"
