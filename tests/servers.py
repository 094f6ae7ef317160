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

from ether_site.cluster import die_with_parent, haproxy_binary

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """Ports nothing listens on, all different: every probe stays bound until the last
    is taken, since two probes in a row may otherwise be handed the same port (it
    happened in CI: nginx's http and https listens got one port and refused to start)."""
    probes = [socket.socket() for _ in range(count)]
    try:
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [probe.getsockname()[1] for probe in probes]
    finally:
        for probe in probes:
            probe.close()


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

    def in_flight(self) -> float:
        """The process's ``ether_api_requests_in_flight``, from its /metrics."""
        from prometheus_client.parser import text_string_to_metric_families

        with urllib.request.urlopen(self.http + "/metrics", timeout=30) as response:
            text = response.read().decode()
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "ether_api_requests_in_flight":
                    return sample.value
        raise AssertionError("no ether_api_requests_in_flight in /metrics")

    def wait_in_flight(self, done: Any, what: str) -> None:
        """Until ``done(in_flight)`` holds, for at most 30 s."""
        deadline = time.monotonic() + 30
        while not done(self.in_flight()):
            assert time.monotonic() < deadline, what
            time.sleep(0.05)

    def claimed_run(self, world: Any, task: Any) -> str:
        """``world``'s harness claims ``task``: the live run's id."""
        claim = f"/api/harness/tasks/{task.public_id}/claim"
        status, claimed = self.call("POST", claim, world.key, {"app_id": world.app.app_id})
        assert status == 200, claimed
        return claimed["run_id"]

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
        "ETHER_ADMISSION_STANDING_WAIT_MS": "20000",
        "ETHER_MAX_QUEUED": "1000",
        # Nor is an event loop a loaded machine keeps waiting (ether_site.loadshed;
        # tests/operating/test_loadshed.py sets its own).
        "ETHER_SHED_LAG_MS": "0",
        "ETHER_SHED_MAX_INFLIGHT": "0",
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


# Set (e.g. ETHER_TEST_WORKERS=2) to run the browser tests' server as that many daphne
# processes behind haproxy, as `make run WORKERS=N` does (Postgres + Redis runs only).
BALANCED_WORKERS = int(os.environ.get("ETHER_TEST_WORKERS") or "0")


@dataclass(frozen=True)
class Cluster:
    """``make run WORKERS=N`` on this test's database: ``balancer`` is haproxy's address
    (its ``process`` the launcher), ``backends`` each daphne process's own address."""

    balancer: Server
    backends: list[Server]
    state: dict[str, Any]

    def haproxy_stats(self) -> list[dict[str, str]]:
        return haproxy_stats(self.state["stats_socket"])


def haproxy_stats(stats_socket: str | Path) -> list[dict[str, str]]:
    """haproxy's ``show stat`` (its stats socket), one dict per frontend/server row."""
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(str(stats_socket))
        sock.sendall(b"show stat\n")
        raw = b""
        while chunk := sock.recv(65536):
            raw += chunk
    header, *rows = raw.decode().strip().splitlines()
    names = header.lstrip("# ").split(",")
    return [dict(zip(names, row.split(","), strict=False)) for row in rows]


def cluster_unavailable() -> str | None:
    """Why ``cluster()`` cannot run here, or None."""
    if connection.vendor != "postgresql" or not settings.REDIS_URL:
        return "several processes need Postgres + Redis (a SQLite run)"
    if haproxy_binary() is None:
        return "haproxy is not installed (apt-get install haproxy)"
    return None


@contextmanager
def cluster(tmp_path: Path, workers: int = 2, **env: str) -> Iterator[Cluster]:
    """``python -m ether_site.cluster`` (what ``make run WORKERS=N`` runs) on this test's
    database and Redis, without migrate/seed: N daphne processes behind haproxy on a free
    port, the background workers once, a metrics directory of its own. Stopped when the
    block ends; and with the test process, if that dies (``PR_SET_PDEATHSIG``)."""
    why = cluster_unavailable()
    if why:
        raise RuntimeError(f"cannot start a cluster: {why}")
    port = free_port()
    var = tmp_path / f"cluster-{port}"
    log = tmp_path / f"cluster-{port}.log"
    child_env = {
        **os.environ,
        "DJANGO_DEBUG": "1",
        "DJANGO_SETTINGS_MODULE": "ether_site.settings",
        "REDIS_URL": settings.REDIS_URL,
        "ETHER_LOG_LEVEL": "INFO",
        "PROMETHEUS_MULTIPROC_DIR": str(var / "metrics"),
        # A loaded machine (a browser, the suite, two servers on two cores) keeps event
        # loops waiting; that is not an overload to refuse (ether_site.loadshed), nor is a
        # queue it keeps for a while (api.admission: the whole default wait, 250 ms).
        "ETHER_SHED_LAG_MS": "0",
        "ETHER_SHED_MAX_INFLIGHT": "0",
        "ETHER_ADMISSION_STANDING_WAIT_MS": "250",
        **database_env(),
        **env,
    }
    command = [sys.executable, "-m", "ether_site.cluster", "--workers", str(workers)]
    command += ["-b", "127.0.0.1", "-p", str(port), "--var", str(var), "--no-setup"]
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=child_env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent,
        )
    try:
        state_file = var / "cluster" / "state.json"
        deadline = time.monotonic() + 120
        while not state_file.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the cluster did not start:\n{log.read_text()[-6000:]}")
            time.sleep(0.2)
        state = json.loads(state_file.read_text())
        # The backends belong to the launcher; ``process`` is it, for every address.
        balancer = Server(port=port, process=process, log=log)
        backends = [Server(port=p, process=process, log=log) for p in state["backends"]]
        yield Cluster(balancer=balancer, backends=backends, state=state)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@contextmanager
def served(tmp_path: Path, **env: str) -> Iterator[Server]:
    """The server of a browser test: one daphne, or with ``ETHER_TEST_WORKERS=N`` N of
    them behind haproxy (the address given is haproxy's)."""
    if BALANCED_WORKERS > 1:
        with cluster(tmp_path, BALANCED_WORKERS, **env) as running:
            yield running.balancer
    else:
        with daphne(tmp_path, **env) as running:
            yield running


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
