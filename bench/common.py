"""What every benchmark shares: its paths and environment, and the stores (SQLite files and
Postgres databases copied from a template migrated once, Redis) with their fixtures.
Real daphne processes are in ``bench.servers``, the HTTP client in ``bench.client``, the
numbers and their output in ``bench.report``.

The benchmark process never imports Django: the servers are real ``daphne`` processes
(``python -m ether_site.serve``, as ``make run``), and the data is made by
``python -m bench.fixtures`` in a child process pointed at the same store, so one run can
measure SQLite and Postgres side by side.
"""

from __future__ import annotations

import json
import os
import resource
import secrets
import shutil
import socket
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
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
# ETHER_BENCH_DB_SUFFIX (or, in the smoke test, ETHER_TEST_DB_SUFFIX): two benchmark runs
# on one Postgres never drop each other's database.
_SUFFIX = os.environ.get("ETHER_BENCH_DB_SUFFIX") or os.environ.get("ETHER_TEST_DB_SUFFIX", "")
PG_TEMPLATE = f"ether_bench{_SUFFIX}"  # migrated once per run, then copied for each scenario
PG_RUN = f"ether_bench_run{_SUFFIX}"
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
        # Leases outlive the run: the steps benchmark came back to its 50 live runs after
        # the default 300 s and got 409 lease_lost, which measured expiry, not the server.
        env=django_env({**store.env, "REDIS_URL": redis_url, "ETHER_LEASE_SECONDS": "3600"}),
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"bench.fixtures {' '.join(args)} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])
