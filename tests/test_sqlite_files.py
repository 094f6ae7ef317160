"""Issue 12, item 7 (e): the SQLite database and its -wal/-shm files are 0600.

The database holds password hashes, session keys and token hashes; ``sqlite3`` would
create it ``0644`` under the usual umask. Each check runs in a fresh process with the
settings' own path logic (``ETHER_SQLITE_PATH``, no ``DATABASE_URL``) and umask 022.
"""

from __future__ import annotations

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
