"""SQLite's checkpoints run in a thread of the serving process, not in a step's commit
(ether_site.walcheckpoint): on a real WAL file with a real thread, and in a real daphne
process serving steps."""

from __future__ import annotations

import hashlib
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from django.db import connection

from ether_site import walcheckpoint
from tests.servers import daphne

on_sqlite = pytest.mark.skipif(
    connection.vendor != "sqlite", reason="the checkpointer is for SQLite's write-ahead log"
)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def settled(path: Path, before: str, seconds: float) -> bool:
    """Whether the database file changed from ``before`` within ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if digest(path) != before:
            return True
        time.sleep(0.05)
    return False


def test_the_thread_copies_the_log_into_the_file_without_a_commit_doing_it(tmp_path):
    """Fewer than 1,000 pages of commits never checkpoint by themselves: the file stays
    as it was until the thread copies the log in; then the log is all copied."""
    path = tmp_path / "db.sqlite3"
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)")
    writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    for _ in range(50):
        writer.execute("INSERT INTO t (body) VALUES (?)", ("x" * 1500,))
    before = digest(path)
    assert not settled(path, before, 0.3)  # the commits copied nothing back
    stop = threading.Event()
    thread = threading.Thread(target=walcheckpoint.run, args=(path, stop, 0.05))
    thread.start()
    try:
        assert settled(path, before, 5)
    finally:
        stop.set()
        thread.join(5)
    busy, frames, copied = walcheckpoint.checkpoint(writer)
    assert busy == 0 and frames == copied
    assert len(sqlite3.connect(path).execute("SELECT id FROM t").fetchall()) == 50


def test_a_failing_checkpoint_is_tried_again_not_fatal(tmp_path, caplog):
    """A file that is not a database: the thread logs one warning and keeps going."""
    path = tmp_path / "not-a-database"
    path.write_bytes(b"x" * 4096)
    stop = threading.Event()
    thread = threading.Thread(target=walcheckpoint.run, args=(path, stop, 0.02))
    thread.start()
    time.sleep(0.3)
    alive = thread.is_alive()
    stop.set()
    thread.join(5)
    assert alive
    warnings = [r for r in caplog.records if "WAL checkpoint" in r.getMessage()]
    assert len(warnings) == 1


@on_sqlite
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("interval", ["500", "0"])
def test_a_served_database_is_checkpointed_after_steps_unless_turned_off(world, tmp_path, interval):
    """20 steps through a real daphne: with the thread the file takes them in within
    seconds, with no commit near 1,000 pages; turned off (0), it does not."""
    harness = world.harness()
    task = world.task()
    run_id = harness.claim(task.public_id).json()["run_id"]
    path = Path(connection.settings_dict["NAME"])
    with daphne(tmp_path, ETHER_SQLITE_CHECKPOINT_MS=interval) as server:
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        before = digest(path)
        for i in range(20):
            status, body = server.call(
                "POST",
                f"/api/harness/tasks/{task.public_id}/steps",
                world.key,
                {"run_id": run_id, "phase": "coding_agent", "user_message": f"step {i}"},
            )
            assert status == 201, body
        changed = settled(path, before, 3)
    assert changed is (interval != "0")


def test_only_a_sqlite_file_is_checkpointed():
    postgres = {"ENGINE": "django.db.backends.postgresql", "NAME": "ether"}
    assert walcheckpoint.database_file(postgres) is None
    assert walcheckpoint.database_file({"ENGINE": "ether_site.sqlite", "NAME": ":memory:"}) is None
    on_disk = {"ENGINE": "ether_site.sqlite", "NAME": Path("/x/db.sqlite3")}
    assert walcheckpoint.database_file(on_disk) == Path("/x/db.sqlite3")
