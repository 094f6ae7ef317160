"""Issue 12, item 7 (e): the SQLite database and its -wal/-shm files are 0600.

The database holds password hashes, session keys and token hashes; ``sqlite3`` would
create it ``0644`` under the usual umask. Each check runs in a fresh process with the
settings' own path logic (``ETHER_SQLITE_PATH``, no ``DATABASE_URL``) and umask 022.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Opens the database the settings name, writes (so SQLite makes -wal and -shm), and
# keeps the connection open while the parent process looks at the files.
CHILD = """
import os, sys
os.umask(0o022)
import django
django.setup()
from django.conf import settings
from django.db import connection
with connection.cursor() as cursor:
    cursor.execute("CREATE TABLE IF NOT EXISTS probe (x integer)")
    cursor.execute("INSERT INTO probe VALUES (1)")
print(settings.DATABASES["default"]["NAME"], flush=True)
sys.stdin.read()
"""


def open_database(path: Path) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "ether_site.settings",
        "DJANGO_DEBUG": "1",
        "DATABASE_URL": "",
        "ETHER_SQLITE_PATH": str(path),
    }
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD],
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == str(path)
    return child


def modes(path: Path) -> dict[str, int]:
    return {
        suffix: stat.S_IMODE(Path(f"{path}{suffix}").stat().st_mode)
        for suffix in ("", "-wal", "-shm")
        if Path(f"{path}{suffix}").exists()
    }


def test_a_fresh_database_and_its_wal_and_shm_are_0600(tmp_path):
    path = tmp_path / "fresh.sqlite3"
    child = open_database(path)
    try:
        assert modes(path) == {"": 0o600, "-wal": 0o600, "-shm": 0o600}
    finally:
        child.communicate("")


def test_an_existing_world_readable_database_is_made_0600(tmp_path):
    path = tmp_path / "old.sqlite3"
    child = open_database(path)
    child.communicate("")
    for file in tmp_path.iterdir():
        os.chmod(file, 0o644)
    child = open_database(path)
    try:
        assert set(modes(path).values()) == {0o600}
    finally:
        child.communicate("")


def test_the_test_database_is_0600_too(db):
    from django.db import connection

    if connection.vendor != "sqlite":
        return  # Postgres keeps its files itself
    connection.ensure_connection()
    assert set(modes(Path(connection.settings_dict["NAME"])).values()) == {0o600}


# Issue 18: a SQLite DATABASE_URL once got Django's stock settings (rollback journal,
# deferred transactions, no busy timeout), and 254 of 300 steps at 60/s were 503.
TUNING = """
import json
import django
django.setup()
from django.conf import settings
from django.db import connection
with connection.cursor() as cursor:
    cursor.execute("PRAGMA journal_mode")
    journal = cursor.fetchone()[0]
    cursor.execute("PRAGMA busy_timeout")
    busy = cursor.fetchone()[0]
options = settings.DATABASES["default"]["OPTIONS"]
print(json.dumps({"journal": journal, "busy_ms": busy, "mode": options["transaction_mode"],
                  "engine": settings.DATABASES["default"]["ENGINE"]}))
"""


def run_with_url(url: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "ether_site.settings",
        "DJANGO_DEBUG": "1",
        "DATABASE_URL": url,
    }
    return subprocess.run(
        [sys.executable, "-c", TUNING], cwd=ROOT, env=env, capture_output=True, text=True
    )


def test_a_sqlite_database_url_gets_the_same_tuning_as_the_default(tmp_path):
    path = tmp_path / "from-url.sqlite3"
    done = run_with_url(f"sqlite:///{path}")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "journal": "wal",
        "busy_ms": 5000,
        "mode": "IMMEDIATE",
        "engine": "ether_site.sqlite",
    }
    assert set(modes(path).values()) == {0o600}


def test_an_in_memory_sqlite_url_is_refused_plainly():
    done = run_with_url("sqlite://:memory:")
    assert done.returncode != 0
    assert "SQLite needs a file path" in done.stderr
