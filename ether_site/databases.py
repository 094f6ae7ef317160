"""The ``default`` database of ether_site/settings.py: SQLite (the default, or a
``sqlite://`` ``DATABASE_URL``) tuned for concurrent writers, or Postgres with a pool and
a lock timeout."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from ether_site.env import env_int, env_str


def sqlite_database(path: Path, *, data_dir: Path, lock_timeout: float) -> dict[str, Any]:
    """The one SQLite configuration, for the default file and for a ``sqlite://`` URL.

    A ``DATABASE_URL=sqlite:///…`` once got Django's stock settings (no WAL, deferred
    transactions, no busy timeout): at 60 steps/s 254 of 300 steps were 503 (issue 18).
    """
    return {
        # Django's backend with 0600 files (the database holds password and key hashes).
        "ENGINE": "ether_site.sqlite",
        "NAME": path,
        "OPTIONS": {
            # IMMEDIATE takes the write lock at BEGIN, so two writers queue on the busy
            # timeout instead of one failing with "database is locked" at its first write.
            "transaction_mode": "IMMEDIATE",
            "timeout": lock_timeout,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        },
        # Concurrency tests need real connections from several threads: a file, not memory.
        # ETHER_TEST_DB_SUFFIX lets two test runs share a checkout without sharing a file.
        "TEST": {"NAME": str(data_dir / f"test-ether{env_str('ETHER_TEST_DB_SUFFIX')}.sqlite3")},
    }


def postgres_tuning(db: dict[str, Any], *, lock_timeout: float) -> None:
    """Sets the pool, the health checks and the lock timeout on a Postgres configuration."""
    lock_ms = int(lock_timeout * 1000)
    db.setdefault("OPTIONS", {})
    # Under daphne each request runs its sync code in a thread of its own, so a
    # persistent connection (CONN_MAX_AGE) outlives its thread and is never reused:
    # every concurrent request left one open until Postgres refused new clients
    # (bench/bench_contention.py found it). A per-process pool bounds and reuses them.
    db["CONN_MAX_AGE"] = 0
    # With a pool, Django turns this into the pool's `check`: a connection is tested
    # when it leaves the pool and replaced if dead. Without it, a backend killed while
    # idle (a Postgres restart, a failover, an idle reaper) was handed to the next
    # request, which answered 503 (tests/reliability/test_faults.py).
    db["CONN_HEALTH_CHECKS"] = True
    db["OPTIONS"]["pool"] = {
        "min_size": 1,
        "max_size": env_int("ETHER_DB_POOL_SIZE", 10, minimum=1),
        "timeout": lock_timeout,
    }
    # A locked row must not hang a request forever: past the timeout it is a 503.
    db["OPTIONS"]["options"] = f"-c lock_timeout={lock_ms}"
    db["OPTIONS"].setdefault("connect_timeout", 5)
    # ETHER_TEST_DB_SUFFIX lets two test runs share one server without sharing a database.
    db["TEST"] = {"NAME": f"test_{db['NAME']}{env_str('ETHER_TEST_DB_SUFFIX')}"}


def default_database(*, database_url: str, data_dir: Path, lock_timeout: float) -> dict[str, Any]:
    """The ``default`` entry of DATABASES, from ``DATABASE_URL`` (empty: the SQLite file in
    the data directory, or ``ETHER_SQLITE_PATH``)."""
    db: dict[str, Any]
    if database_url and database_url.startswith("sqlite"):
        parsed = dj_database_url.parse(database_url)
        if not parsed["NAME"] or parsed["NAME"] == ":memory:":
            raise ImproperlyConfigured(
                "DATABASE_URL: SQLite needs a file path (sqlite:////abs/path.sqlite3); "
                "several threads and processes share the database"
            )
        data_dir.mkdir(parents=True, exist_ok=True)
        db = sqlite_database(Path(parsed["NAME"]), data_dir=data_dir, lock_timeout=lock_timeout)
    elif database_url:
        db = dj_database_url.parse(database_url, conn_max_age=60, conn_health_checks=True)
        if db["ENGINE"] == "django.db.backends.postgresql":
            postgres_tuning(db, lock_timeout=lock_timeout)
    else:
        data_dir.mkdir(parents=True, exist_ok=True)
        # ETHER_SQLITE_PATH points a second process (a test's daphne) at the same file.
        path = Path(env_str("ETHER_SQLITE_PATH", str(data_dir / "ether.sqlite3")))
        db = sqlite_database(path, data_dir=data_dir, lock_timeout=lock_timeout)
    return db
