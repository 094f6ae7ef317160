"""Real daphne processes for tests that need what the in-process clients cannot give: a
second server process, a socket that stops reading, a Redis that goes away.

A server started here uses the test database of the running test (its SQLite file or its
Postgres database), so a test marked ``django_db(transaction=True)`` sees what the server
wrote and the server sees what the test committed. It binds 127.0.0.1 on a free port and
is stopped when its ``with`` block ends, whatever happens inside.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def database_env() -> dict[str, str]:
    """Environment that points a child process at this test's database."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return {"DATABASE_URL": "", "ETHER_SQLITE_PATH": str(db["NAME"])}
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    port = f":{db['PORT']}" if db.get("PORT") else ""
    url = f"postgres://{db['USER']}{password}@{db['HOST']}{port}/{db['NAME']}"
    return {"DATABASE_URL": url}


@dataclass(frozen=True)
class Server:
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def rss_kib(self) -> int:
        """The server process's resident memory."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS line")

    def call(self, method: str, path: str, secret: str, body: Any = None) -> tuple[int, Any]:
        """One JSON request with a bearer credential: the status and the parsed body."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.http + path,
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {secret}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")


@contextmanager
def daphne(tmp_path: Path, *, redis_url: str | None = None, **env: str) -> Iterator[Server]:
    """One daphne process on this test's database; ``redis_url`` defaults to the suite's."""
    port = free_port()
    log = tmp_path / f"daphne-{port}.log"
    child_env = {
        **os.environ,
        "DJANGO_DEBUG": "1",
        "DJANGO_SETTINGS_MODULE": "ether_site.settings",
        "REDIS_URL": settings.REDIS_URL if redis_url is None else redis_url,
        "ETHER_LOG_LEVEL": "INFO",
        # Admission stays on (api.admission), but a request may wait long for its slot: a
        # burst of a test on a loaded machine is not an overload to refuse. The overload
        # tests (tests/test_admission.py) set their own short limits.
        "ETHER_ADMISSION_WAIT_MS": "20000",
        "ETHER_MAX_QUEUED": "1000",
        **database_env(),
        **env,
    }
    # The same entry point as `make run`: daphne with its access log redacted.
    command = [sys.executable, "-m", "ether_site.serve", "-b", "127.0.0.1", "-p", str(port)]
    command += ["--websocket_timeout", "86400", "ether_site.asgi:application"]
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command, cwd=ROOT, env=child_env, stdout=sink, stderr=subprocess.STDOUT
        )
    server = Server(port=port, process=process, log=log)
    try:
        _wait_until_listening(server)
        yield server
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _wait_until_listening(server: Server, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"daphne exited early:\n{server.output()}")
        try:
            with socket.create_connection(("127.0.0.1", server.port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"daphne did not listen within {timeout} s:\n{server.output()}")


@contextmanager
def loopback_http(handler: type[BaseHTTPRequestHandler]) -> Iterator[int]:
    """Serves ``handler`` on 127.0.0.1 (a free port) in a thread, for a fake upstream a
    test talks to over real HTTP; yields the port, and stops the server afterwards."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
