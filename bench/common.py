"""What every benchmark shares: the stores, real daphne processes, a small HTTP/1.1 client,
percentiles, progress and the JSON/table output.

The benchmark process never imports Django: the servers are real ``daphne`` processes
(``python -m ether_site.serve``, as ``make run``), and the data is made by
``python -m bench.fixtures`` in a child process pointed at the same store, so one run can
measure SQLite and Postgres side by side.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
# The smoke test writes elsewhere, so it never overwrites the numbers of a full run.
OUT = Path(os.environ.get("ETHER_BENCH_OUT") or ROOT / "var" / "bench")
# Only SQLite and the in-memory layer (the smoke test: no shared Postgres or Redis).
SQLITE_ONLY = os.environ.get("ETHER_BENCH_SQLITE_ONLY", "") == "1"
PY = sys.executable

PG_ADMIN_URL = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432/postgres")
PG_TEMPLATE = "ether_bench"  # migrated once per run, then copied for each scenario
PG_RUN = "ether_bench_run"
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/5")
# The code the servers and fixtures run: the working tree, or (``--snapshot``) the
# committed HEAD exported to var/bench/src-SHA, so edits in progress in a shared checkout
# cannot break or skew a long run.
SRC = ROOT


def use_snapshot() -> str:
    """Exports HEAD and points every child process at it; returns the commit."""
    global SRC
    sha = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    target = OUT / f"src-{sha}"
    if not target.exists():
        target.mkdir(parents=True)
        archive = subprocess.run(["git", "archive", "HEAD"], cwd=ROOT, capture_output=True)
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    SRC = target
    return sha


# One secret for every server of a run: DEBUG off, as in production (no query log).
SECRET_KEY = "bench-" + secrets.token_hex(16)


# --- environment ------------------------------------------------------------------------


def raise_fd_limit() -> int:
    """Thousands of sockets need thousands of descriptors, in the generator and servers."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def progress(label: str, done: int, total: int) -> None:
    """A one-line progress bar on stderr (``\\r``), so stdout keeps only the tables."""
    width = 30
    filled = int(width * done / total) if total else width
    end = "\n" if done >= total else ""
    sys.stderr.write(
        f"\r  {label:<42} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}{end}"
    )
    sys.stderr.flush()


# --- stores -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Store:
    """Where a server and the fixtures keep their data: the env that selects it."""

    name: str  # "sqlite" | "postgres"
    env: dict[str, str]
    path: str  # the SQLite file or the Postgres URL (the baseline connects to it too)


def _manage(env: dict[str, str], *args: str) -> None:
    subprocess.run(
        [PY, "manage.py", *args], cwd=SRC, env=django_env(env), check=True, capture_output=True
    )


def django_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "ether_site.settings",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": SECRET_KEY,
        "DATABASE_URL": "",
        "REDIS_URL": "",
        "ETHER_LOG_LEVEL": "WARNING",
        # Plain HTTP on 127.0.0.1, and the capacity of the server, not of its rate limits.
        "ETHER_SSL_REDIRECT": "0",
        "ETHER_RATE_HARNESS": "off",
        "ETHER_RATE_CLAIM": "off",
        "ETHER_RATE_TICKET": "off",
        # The fan-out and idle-socket benchmarks open thousands of sockets with one token.
        "ETHER_STREAMS_PER_CREDENTIAL": "1000000",
        "PYTHONPATH": str(SRC),
    }
    env.update(extra or {})
    return env


_template_ready: set[str] = set()


def sqlite_store(name: str) -> Store:
    """A fresh SQLite file under var/bench/, copied from a template migrated once."""
    OUT.mkdir(parents=True, exist_ok=True)
    template = OUT / "template.sqlite3"
    if "sqlite" not in _template_ready:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{template}{suffix}").unlink(missing_ok=True)
        _manage({"ETHER_SQLITE_PATH": str(template)}, "migrate", "--no-input", "-v0")
        with sqlite3.connect(template) as db:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        _template_ready.add("sqlite")
    target = OUT / f"{name}.sqlite3"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(template, target)
    return Store("sqlite", {"ETHER_SQLITE_PATH": str(target), "DATABASE_URL": ""}, str(target))


def _pg_url(db: str) -> str:
    parts = urlsplit(PG_ADMIN_URL)
    return parts._replace(path=f"/{db}").geturl()


def postgres_available() -> bool:
    if SQLITE_ONLY:
        return False
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3):
            return True
    except Exception:
        return False


def redis_available() -> bool:
    if SQLITE_ONLY:
        return False
    try:
        import redis

        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3).ping())
    except Exception:
        return False


def postgres_store() -> Store:
    """A fresh copy (``CREATE DATABASE … TEMPLATE``) of ``ether_bench``, migrated once."""
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as db:
        if "postgres" not in _template_ready:
            exists = db.execute("SELECT 1 FROM pg_database WHERE datname = %s", [PG_TEMPLATE])
            if exists.fetchone() is None:
                db.execute(f'CREATE DATABASE "{PG_TEMPLATE}"')
            _manage({"DATABASE_URL": _pg_url(PG_TEMPLATE)}, "migrate", "--no-input", "-v0")
            _template_ready.add("postgres")
        db.execute(f'DROP DATABASE IF EXISTS "{PG_RUN}" WITH (FORCE)')
        db.execute(f'CREATE DATABASE "{PG_RUN}" TEMPLATE "{PG_TEMPLATE}"')
    url = _pg_url(PG_RUN)
    return Store("postgres", {"DATABASE_URL": url}, url)


def redis_flush() -> None:
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()


def fixtures(store: Store, *args: str, redis_url: str = "") -> Any:
    """Runs ``python -m bench.fixtures ARGS`` on the store; its last stdout line is JSON."""
    done = subprocess.run(
        [PY, "-m", "bench.fixtures", *args],
        cwd=SRC,
        env=django_env({**store.env, "REDIS_URL": redis_url}),
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"bench.fixtures {' '.join(args)} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- servers ----------------------------------------------------------------------------


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
    command += ["--websocket_timeout", "86400", app]
    child_env = django_env(env)
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command,
            cwd=SRC,
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


# --- a small HTTP/1.1 keep-alive client ---------------------------------------------------


class HttpError(Exception):
    pass


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Http:
    """One keep-alive HTTP/1.1 connection. No dependency: Content-Length and chunked
    bodies are all daphne sends."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()
            self.writer = self.reader = None

    def _head(self, method: str, path: str, headers: dict[str, str], body: bytes) -> bytes:
        lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{self.port}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        if body or method in {"POST", "PUT"}:
            lines.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body

    async def send(
        self, method: str, path: str, headers: dict[str, str] | None = None, body: Any = None
    ) -> None:
        if self.writer is None:
            await self.open()
        assert self.writer is not None
        payload = b"" if body is None else json.dumps(body).encode()
        head = dict(headers or {})
        if body is not None:
            head.setdefault("Content-Type", "application/json")
        self.writer.write(self._head(method, path, head, payload))
        await self.writer.drain()

    async def read_head(self) -> tuple[int, dict[str, str]]:
        assert self.reader is not None
        raw = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        return status, headers

    async def read_body(self, headers: dict[str, str]) -> bytes:
        assert self.reader is not None
        if "content-length" in headers:
            return await self.reader.readexactly(int(headers["content-length"]))
        if headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    await self.reader.readuntil(b"\r\n")
                    return b"".join(chunks)
                chunks.append(await self.reader.readexactly(size))
                await self.reader.readexactly(2)
        body = await self.reader.read()  # no length: until the server closes
        await self.close()
        return body

    async def request(
        self, method: str, path: str, headers: dict[str, str] | None = None, body: Any = None
    ) -> Response:
        for attempt in (1, 2):
            reused = self.writer is not None
            try:
                await self.send(method, path, headers, body)
                status, head = await self.read_head()
                content = await self.read_body(head)
                break
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as error:
                await self.close()
                # A kept-alive connection the server closed while idle: once more on a new one.
                nothing = isinstance(error, asyncio.IncompleteReadError) and not error.partial
                if not (reused and nothing and attempt == 1):
                    raise HttpError(str(error)) from error
        if head.get("connection", "").lower() == "close":
            await self.close()
        return Response(status, head, content)


# --- numbers ------------------------------------------------------------------------------


def pct(sorted_values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of an already sorted list (``nan`` when empty)."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), round(p / 100 * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


def summary_ms(samples_s: Sequence[float]) -> dict[str, float | int]:
    """p50/p95/p99/max in milliseconds of samples in seconds."""
    values = sorted(samples_s)
    return {
        "n": len(values),
        "p50_ms": round(pct(values, 50) * 1000, 3),
        "p95_ms": round(pct(values, 95) * 1000, 3),
        "p99_ms": round(pct(values, 99) * 1000, 3),
        "max_ms": round((values[-1] if values else float("nan")) * 1000, 3),
    }


def ratio(ours: float, base: float) -> float:
    return round(ours / base, 2) if base else float("nan")


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table: printed as is and pasted into docs/performance.md."""

    def cell(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
        if isinstance(value, int):
            return f"{value:,}"
        return str(value)

    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(out)


def write_json(name: str, data: dict[str, Any]) -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{name}.json"
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
    return path
