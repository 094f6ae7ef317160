"""Backups of the whole database, and restoring one (``manage.py backup`` / ``restore``).

SQLite: SQLite's online backup API (``sqlite3.Connection.backup``) copies a consistent
snapshot while the server keeps serving (WAL lets writers go on meanwhile); a restore
copies the backup's pages back into the live database the same way, in one step.

Postgres: ``pg_dump --format=custom`` and ``pg_restore --clean --if-exists
--single-transaction``, found on ``PATH`` (Debian: ``postgresql-client``, of the
server's major version or newer). The connection settings are passed in the
environment (``PGHOST``, ``PGPASSWORD``…), never on a command line that ``ps`` shows.

A backup holds password and key hashes: the file is created ``0600``. A restore
replaces everything in the database; stop the servers and workers first
(docs/deploy.md).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

from django.db import connection

SQLITE_MAGIC = b"SQLite format 3\x00"
PG_CUSTOM_MAGIC = b"PGDMP"

PG_RECIPE = (
    "pg_dump is not on PATH. Install the Postgres client (Debian: apt-get install "
    "postgresql-client), or back up by hand: PGPASSWORD=… pg_dump --format=custom "
    "--no-owner -h HOST -U USER -f PATH DBNAME (restore: pg_restore --clean --if-exists "
    "--no-owner --single-transaction -h HOST -U USER -d DBNAME PATH)."
)


class BackupError(Exception):
    pass


def vendor() -> str:
    return connection.vendor


def _private_file(path: Path) -> None:
    """Creates ``path`` empty with mode 0600 (or makes an existing one 0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.close(fd)
    os.chmod(path, 0o600)


def _live_sqlite() -> sqlite3.Connection:
    connection.ensure_connection()
    if connection.in_atomic_block:
        raise BackupError("a backup or restore cannot run inside a transaction")
    return connection.connection


def _pg_env() -> dict[str, str]:
    db = connection.settings_dict
    env = {**os.environ, "PGDATABASE": db["NAME"], "PGCONNECT_TIMEOUT": "10"}
    for setting, variable in (
        ("HOST", "PGHOST"),
        ("PORT", "PGPORT"),
        ("USER", "PGUSER"),
        ("PASSWORD", "PGPASSWORD"),
    ):
        if db.get(setting):
            env[variable] = str(db[setting])
    return env


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupError(PG_RECIPE)
    return found


def _run(command: list[str]) -> None:
    done = subprocess.run(command, env=_pg_env(), capture_output=True, text=True)
    if done.returncode != 0:
        raise BackupError(f"{Path(command[0]).name} failed: {done.stderr.strip()}")


def backup(path: Path) -> None:
    """Writes a consistent copy of the database to ``path`` (replaced if it exists): the
    copy goes to a temporary file beside it first, so a failed backup never leaves a
    truncated file under the final name."""
    partial = path.with_name(path.name + ".partial")
    _private_file(partial)
    try:
        if vendor() == "sqlite":
            target = sqlite3.connect(partial)
            try:
                _live_sqlite().backup(target)
            finally:
                target.close()
        elif vendor() == "postgresql":
            _run([_tool("pg_dump"), "--format=custom", "--no-owner", f"--file={partial}"])
        else:
            raise BackupError(f"no backup for the {vendor()} backend")
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def _magic(path: Path) -> bytes:
    with path.open("rb") as handle:
        return handle.read(16)


def restore(path: Path) -> None:
    """Replaces the database's content with the backup at ``path``."""
    if not path.is_file():
        raise BackupError(f"{path} is not a file")
    head = _magic(path)
    if vendor() == "sqlite":
        if not head.startswith(SQLITE_MAGIC):
            raise BackupError(f"{path} is not a SQLite backup (made with a SQLite database?)")
        source = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            if source.execute("PRAGMA quick_check").fetchone()[0] != "ok":
                raise BackupError(f"{path} fails SQLite's integrity check")
            source.backup(_live_sqlite())
        finally:
            source.close()
    elif vendor() == "postgresql":
        if not head.startswith(PG_CUSTOM_MAGIC):
            raise BackupError(f"{path} is not a pg_dump custom-format backup")
        # Idle pooled connections hold no locks, but close ours so nothing waits on us.
        connection.close()
        _run(
            [
                _tool("pg_restore"),
                "--clean",
                "--if-exists",
                "--no-owner",
                "--single-transaction",
                "--exit-on-error",
                f"--dbname={connection.settings_dict['NAME']}",
                str(path),
            ]
        )
    else:
        raise BackupError(f"no restore for the {vendor()} backend")
