"""Django's SQLite backend whose files are private: ``0600``, whatever the umask.

The database holds password hashes, session keys and the hashes of every token and app
key. ``sqlite3.connect`` creates the file as ``0666 & ~umask``, usually ``0644``, so any
local account could read it. Before each connection the file is created ``0600`` if it is
missing (and tightened if it exists); SQLite gives the ``-wal`` and ``-shm`` files it
makes later the mode of the database file, and those that exist are tightened too.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from django.db.backends.sqlite3 import base

PRIVATE = 0o600


def _file_path(name: object) -> Path | None:
    """The file a database name opens; None for in-memory databases and URIs."""
    text = str(name)
    if not text or text == ":memory:" or text.startswith("file:") or "mode=memory" in text:
        return None
    return Path(text)


def make_private(path: Path) -> None:
    """Creates ``path`` as 0600 if missing, then brings it and its -wal/-shm to 0600.

    Never opens a file that exists: SQLite's locks are POSIX advisory locks, which belong
    to the process, and closing *any* descriptor of the file drops every lock the
    process holds on it, so an open-and-close here while another thread's connection is
    in a transaction breaks that connection's locking ("disk I/O error" under the
    concurrency tests). ``O_EXCL`` creates only a file nobody has open yet; the modes of
    existing files are changed by path."""
    if not path.exists():
        # FileExistsError: another thread made it first, with the same mode.
        with contextlib.suppress(FileExistsError):
            os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, PRIVATE))
    for file in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        try:
            if file.stat().st_mode & 0o777 != PRIVATE:
                os.chmod(file, PRIVATE)
        except FileNotFoundError:
            pass


class DatabaseWrapper(base.DatabaseWrapper):
    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        path = _file_path(conn_params.get("database"))
        if path is not None:
            make_private(path)
        return super().get_new_connection(conn_params)
