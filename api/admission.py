"""Past capacity, refuse fast: a per-process admission limit on API requests.

Why (issue 18, docs/performance.md "Past capacity"): under daphne, every HTTP request
runs Django in a worker thread of its own, with no bound on their number. When steps
arrive faster than one process can write them, each extra request still got a thread,
a database connection and its place in the queue for SQLite's one write lock (or for a
connection of the Postgres pool). They all shared one GIL and waited up to
``ETHER_DB_LOCK_TIMEOUT`` (5 s) each: the queue grew by the second, the median step took
14 s, and the ones that waited out the timeout failed with 503 after holding a thread and
a connection all that time.

Here the waiting moves out in front, into the event loop, where it costs nothing: at
most ``ETHER_MAX_INFLIGHT_WRITES`` API writes (POST, PUT, PATCH, DELETE) and
``ETHER_MAX_INFLIGHT_REQUESTS`` API requests in all run in Django at once. Another
request waits for a slot in the event loop, holding no thread, no connection and no lock,
for at most ``ETHER_ADMISSION_WAIT_MS``; then (or at once, when ``ETHER_MAX_QUEUED``
requests already wait) it is answered ``503 overloaded`` with ``Retry-After``, a problem
document, having changed nothing. The requests admitted keep their latency, because the
queue in front of the database stays as short as the limits.

A queue that stays is overload, not a burst: a request that joins a queue that for
``STANDING_SECONDS`` was never empty and had nobody leave it within
``ETHER_ADMISSION_STANDING_WAIT_MS`` (25) waits at most that, a tenth of the usual wait.
This is CoDel's rule as Facebook's servers apply it to their request queues ("Fail at
Scale", ACM Queue, 2015). With the whole wait for every request, the ones taken past
capacity had each waited most of it: heartbeats offered at twice what one process serves
took 265 ms at the median against 6 ms below capacity (issue 18, docs/performance.md §8,
"Fifth pass"). A burst after a quiet spell still gets the whole wait, and the queue
empties, so the first request after it does too.

Long-poll waits (``api.longpoll``) sit outside this: each of their looks is admitted on
its own, and nothing is held between looks. WebSockets and pages other than the API are
not limited here.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

from django.conf import settings

from api import metrics
from api.problems import is_api_path, problem_body

log = logging.getLogger(__name__)

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
RETRY_AFTER_SECONDS = 1


# A queue that for this long was never empty and had nobody leave it soon is standing
# (see the module).
STANDING_SECONDS = 0.1


class Standing:
    """Whether a queue is standing, and so how long one more request may wait.

    Standing: for ``STANDING_SECONDS`` the queue was never seen empty and nobody left it
    within the standing wait. Leaving counts as CoDel measures a queue, by the time the
    one who left had waited (its sojourn). A queue that is merely never empty is not
    standing: the step lane's writer takes at most a batch at a time, so near capacity its
    queue held some steps all the time while each waited a few milliseconds; counted as
    standing, the short wait refused steps at a rate the process kept up with (issue 18,
    docs/performance.md §8, "Sixth pass"). A queue nobody leaves at all (its server held
    up) stands."""

    def __init__(self) -> None:
        self.moved_at = time.monotonic()  # last seen empty, or left soon by someone

    def empty(self) -> None:
        """The queue is empty: whatever comes next waits for nothing."""
        self.moved_at = time.monotonic()

    def left(self, sojourn: float, standing: float) -> None:
        """Someone left the queue after waiting ``sojourn`` seconds (``math.inf`` for one
        refused for its wait); ``standing`` is the standing wait."""
        if sojourn <= standing:
            self.moved_at = time.monotonic()

    def standing(self) -> bool:
        """Whether the queue has stood for ``STANDING_SECONDS``."""
        return time.monotonic() - self.moved_at > STANDING_SECONDS

    def wait(self, burst: float, standing: float) -> float:
        """``burst``, or the shorter of ``standing`` and ``burst`` while standing."""
        return min(burst, standing) if self.standing() else burst


class Gate:
    """A counting gate with a bounded, time-limited queue, for one event loop."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.inflight = 0
        self.waiters: list[asyncio.Future[None]] = []
        self.queue = Standing()

    async def enter(
        self, wait_seconds: float, max_queued: int, standing_wait: float | None = None
    ) -> bool:
        """Takes a slot, waiting for one at most ``wait_seconds`` (``standing_wait``
        when the queue is standing); False if none came."""
        if not self.waiters:
            self.queue.empty()
            if self.inflight < self.limit:
                self.inflight += 1
                return True
        if standing_wait is not None:
            wait_seconds = self.queue.wait(wait_seconds, standing_wait)
        if len(self.waiters) >= max_queued or wait_seconds <= 0:
            return False
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        queued_at = time.monotonic()
        try:
            await asyncio.wait_for(waiter, wait_seconds)
        except TimeoutError:
            # wait_for cancelled the waiter, so leave() skips it; it returns a result
            # instead when the slot was handed over just as time ran out.
            if standing_wait is not None:
                # Refused for its wait: it counts as one that waited too long.
                self.queue.left(math.inf, standing_wait)
            self._drop(waiter)
            return False
        except asyncio.CancelledError:  # the client or the server went away
            self._drop(waiter)
            if waiter.done() and not waiter.cancelled():
                self.leave()  # a slot was handed to us: pass it on
            raise
        if standing_wait is not None:
            self.queue.left(time.monotonic() - queued_at, standing_wait)
        return True  # the slot was handed over by leave(): inflight already counts it

    def _drop(self, waiter: asyncio.Future[None]) -> None:
        if waiter in self.waiters:
            self.waiters.remove(waiter)
            if not self.waiters:
                self.queue.empty()

    def leave(self) -> None:
        while self.waiters:
            waiter = self.waiters.pop(0)
            if not waiter.done():
                waiter.set_result(None)  # hand the slot over: inflight stays the same
                if not self.waiters:
                    self.queue.empty()
                return
        self.queue.empty()
        self.inflight -= 1


def _limits() -> tuple[int, int, float, int]:
    return (
        settings.ETHER_MAX_INFLIGHT_WRITES,
        settings.ETHER_MAX_INFLIGHT_REQUESTS,
        settings.ETHER_ADMISSION_WAIT_MS / 1000,
        settings.ETHER_MAX_QUEUED,
    )


def standing_wait() -> float:
    """How long a request may wait in a standing queue, in seconds."""
    return settings.ETHER_ADMISSION_STANDING_WAIT_MS / 1000


@functools.cache
def refusal(writes: bool) -> bytes:
    # Built once: past capacity, refusals come by the thousand a second, and rendering
    # the document each time was a fifth of the process's CPU (profiled, issue 18).
    what = "writes" if writes else "requests"
    body = problem_body(
        503,
        "overloaded",
        "Server overloaded",
        f"This server is at its limit of concurrent {what}; nothing was done. Retry after "
        f"{RETRY_AFTER_SECONDS} s.",
    )
    return json.dumps(body).encode()


def refusal_headers(length: int) -> list[tuple[bytes, bytes]]:
    return [
        (b"content-type", b"application/problem+json"),
        (b"content-length", str(length).encode()),
        (b"retry-after", str(RETRY_AFTER_SECONDS).encode()),
        (b"cache-control", b"no-store"),
    ]


@functools.cache
def _refusals(where: str) -> Any:
    # The labelled counter, looked up once per place: refusals come by the thousand.
    return metrics.OVERLOAD_REFUSALS.labels(where)


async def refuse(send: Send, *, writes: bool, where: str = "admission") -> None:
    _refusals(where).inc()
    payload = refusal(writes)
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": refusal_headers(len(payload)),
        }
    )
    await send({"type": "http.response.body", "body": payload})


class AdmissionASGI:
    """Wraps Django's ASGI handler; see the module."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._gates: dict[int, tuple[Gate, Gate]] = {}

    def _gates_for_loop(self, writes: int, requests: int) -> tuple[Gate, Gate]:
        # One pair per event loop (daphne has one; tests may run several in turn).
        key = id(asyncio.get_running_loop())
        gates = self._gates.get(key)
        if gates is None or (gates[0].limit, gates[1].limit) != (writes, requests):
            gates = (Gate(writes), Gate(requests))
            self._gates = {key: gates}
        return gates

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_api_path(scope.get("path", "")):
            await self.app(scope, receive, send)
            return
        max_writes, max_requests, wait, max_queued = _limits()
        if max_requests <= 0:  # 0: no limit (off)
            await self.app(scope, receive, send)
            return
        write_gate, request_gate = self._gates_for_loop(max_writes, max_requests)
        is_write = scope.get("method", "GET") not in READ_METHODS and max_writes > 0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        standing = standing_wait()
        if not await request_gate.enter(wait, max_queued, standing):
            await refuse(send, writes=False)
            return
        if is_write and not await write_gate.enter(
            max(0.0, deadline - loop.time()), max_queued, standing
        ):
            request_gate.leave()
            await refuse(send, writes=True)
            return
        held = True

        def release() -> None:
            nonlocal held
            if held:
                held = False
                if is_write:
                    write_gate.leave()
                request_gate.leave()

        async def sending(message: Message) -> None:
            # Django has run the view (its thread and transaction are done) once the
            # answer starts: the slot is free while the body goes out, and a stream
            # (SSE) never holds one.
            if message["type"] == "http.response.start":
                release()
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            release()
