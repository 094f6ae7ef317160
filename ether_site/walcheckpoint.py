"""SQLite's WAL checkpoints, in a thread of the serving process rather than in a request.

Why (issue 18, docs/performance.md §8, "Fifth pass"): in WAL mode SQLite copies the log
back into the database file (a checkpoint) once the log passes 1,000 pages, and it does so
in whichever transaction's ``COMMIT`` crossed that line, with the fsyncs that
``synchronous=NORMAL`` saves for checkpoints. Measured on this machine, that commit took
6-8 ms where the others took 0.01-0.1 ms: once every few hundred steps, a harness's step
and the frame its watchers wait for came late by that much, and at 20 steps/s those were
the slowest two in a hundred.

So the serving process checkpoints every ``ETHER_SQLITE_CHECKPOINT_MS`` (500) in a
thread of its own, on its own connection, with ``PASSIVE``: it copies what it can without
waiting for or blocking readers and writers. While commits come less often than every few
milliseconds, it has copied the whole log before the next one, which then starts the log
again from the top, and no commit reaches the 1,000 pages. Under a continuous stream of
commits the log may not restart; the 1,000-page checkpoint in a commit is then still the
safety net, as before, and finds most of the pages already copied.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path
from typing import Any

from django.conf import settings

log = logging.getLogger(__name__)


def database_file(db: dict[str, Any]) -> Path | None:
    """The file of the database configured by ``db`` when it is SQLite on disk, else None."""
    if "sqlite" not in db["ENGINE"]:
        return None
    name = str(db["NAME"])
    if name == ":memory:" or name.startswith("file:"):
        return None
    return Path(name)


def checkpoint(connection: sqlite3.Connection) -> tuple[int, int, int]:
    """One passive checkpoint: (busy, frames in the log, frames copied)."""
    busy, frames, copied = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    return int(busy), int(frames), int(copied)


def run(path: Path, stop: threading.Event, interval: float) -> None:
    """Checkpoints ``path`` every ``interval`` until ``stop`` is set."""
    # isolation_level None: no transaction of Python's around the PRAGMA; a zero busy
    # timeout, since PASSIVE never waits and nothing here should.
    connection = sqlite3.connect(path, isolation_level=None, timeout=0, check_same_thread=False)
    failing = False
    try:
        while not stop.wait(interval):
            try:
                checkpoint(connection)
                failing = False
            except sqlite3.Error as error:
                # The next round tries again; the commits' own checkpoints still run.
                if not failing:
                    log.warning("WAL checkpoint of %s failed: %s", path, error)
                failing = True
    finally:
        connection.close()


def start() -> threading.Event | None:
    """Starts the checkpointer for the default database when it is a SQLite file (and
    ``ETHER_SQLITE_CHECKPOINT_MS`` is not 0); the event that stops it, or None."""
    path = database_file(settings.DATABASES["default"])
    interval = settings.ETHER_SQLITE_CHECKPOINT_MS / 1000
    if path is None or interval <= 0:
        return None
    stop = threading.Event()
    thread = threading.Thread(
        target=run, args=(path, stop, interval), name="sqlite-checkpoint", daemon=True
    )
    thread.start()
    return stop
