"""Work that must not hold a request: started in a thread once the transaction commits.

For calls to other services (GitHub, a model) whose answer is stored later: the request
commits what it knows, and the thread asks and stores the answer in its own transaction.
The caller keeps the state in the database, so a crash (the thread dies with its
process) leaves it to be retried; this module only starts the work.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from functools import partial
from typing import Any

from django.db import connections, transaction

log = logging.getLogger(__name__)


def after_commit(name: str, work: Callable[..., Any], *args: Any) -> None:
    """Runs ``work(*args)`` in a daemon thread once the current transaction commits
    (never, if it rolls back)."""
    transaction.on_commit(partial(_start, name, work, args))


def _start(name: str, work: Callable[..., Any], args: tuple[Any, ...]) -> None:
    threading.Thread(target=_run, args=(name, work, args), name=name, daemon=True).start()


def _run(name: str, work: Callable[..., Any], args: tuple[Any, ...]) -> None:
    try:
        work(*args)
    except Exception:
        log.exception("background work %s failed", name)
    finally:
        connections.close_all()  # this thread's connections, not the request's
