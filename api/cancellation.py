"""Cancellation that a library lost, raised again.

redis-py (8.x, on Python 3.11) can turn the cancellation of a Redis read into another
error, or lose it, and then the caller goes on: a loop that retries after errors, or
channels-redis blocking in BZPOPMIN again every 5 s, never ends, and an event loop's
shutdown (a daphne process stopping, a test's loop closing) waits for it forever. The
task still says it is being cancelled (``Task.cancelling``); these places ask it.
"""

from __future__ import annotations

import asyncio


def stopping() -> None:
    """Raises CancelledError when the current task was cancelled but the cancellation
    did not reach here as one."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
