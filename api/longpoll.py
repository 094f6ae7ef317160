"""Long-poll routes that hold no worker thread and no database connection while they wait.

A DRF view is synchronous: under daphne each request's sync code runs in a thread of its
own, with a database connection, until the view returns. A view that waited inside would
hold both for the whole wait, and 64 waiting harnesses would hold 64 threads and exhaust
the connection pool (``ETHER_DB_POOL_SIZE``). So the waiting happens out here, in the
event loop, and the view only ever *looks*:

1. ``LongPollASGI`` sits in front of Django's ASGI handler. For a route named in
   ``routes`` it reads the request body once, then runs the whole Django request (every
   middleware, authentication, rate limits, idempotency, problem documents) as one
   *look*, with its answer captured rather than sent.
2. The view answers as usual. If it has nothing yet and the caller asked to wait, it
   calls ``nothing_yet``, which marks the look as waiting and names a channel-layer
   group to wake it (a group per org, pinged on commit by ``tasks.events``).
3. The handler then waits in the event loop, with no thread and no connection (Django
   closed the connection and shut the request's thread down when the look ended),
   until a ping on the group or ``ETHER_LONGPOLL_RECHECK_SECONDS`` (the safety net for a
   lost ping, or for a deployment without a shared channel layer), and looks again.
   The last look's answer, or the first one that is not waiting, is sent.

Each look runs in a task of its own, so the context variables a look leaves behind (the
per-request database connection) never leak into the next one. A client that goes away
while waiting stops the loop: nothing is looked for on behalf of nobody.

The view's first look counts against its rate limits; the re-looks of the same request
do not (``LongPoll.is_relook``). A look that is waiting is not stored under an
``Idempotency-Key`` (it is ``transient``): the key is stored with the final answer.
Without this handler (Django's test client) a view gets one look and answers at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from channels.layers import get_channel_layer
from django.conf import settings
from django.urls import reverse
from rest_framework.request import Request
from rest_framework.response import Response

log = logging.getLogger(__name__)

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SCOPE_KEY = "ether.longpoll"


@dataclass
class LongPoll:
    """One long-poll request, shared by its looks through the ASGI scope (which a client
    cannot write to, unlike a header)."""

    started: float = field(default_factory=time.monotonic)
    looks: int = 0
    # Set by the view through nothing_yet(): the look found nothing and wants to wait.
    waiting: bool = False
    group: str | None = None
    deadline: float | None = None

    @property
    def is_relook(self) -> bool:
        return self.looks > 1

    def remaining(self, wait: float) -> float:
        return self.started + wait - time.monotonic()


def current(request: Request) -> LongPoll | None:
    """The long poll this request is a look of, or None (not served by LongPollASGI)."""
    scope = getattr(request, "scope", None)
    return scope.get(SCOPE_KEY) if isinstance(scope, dict) else None


def nothing_yet(request: Request, *, wait: float, group: str) -> Response:
    """The view's answer when it has nothing: 204 now, or (when served by LongPollASGI
    and ``wait`` has not run out) a waiting look, woken by a ping on ``group``."""
    response = Response(status=204)
    poll = current(request)
    if poll is not None and wait > 0 and poll.remaining(wait) > 0:
        poll.waiting = True
        poll.group = group
        poll.deadline = poll.started + wait
        # Not stored under an Idempotency-Key: the answer is the last look's.
        response.transient = True  # type: ignore[attr-defined]
    return response


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The request body, at most ``limit + 1`` bytes (Django then answers 413 for more);
    None if the client went away first."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if size > limit or not message.get("more_body", False):
            return b"".join(chunks)[: limit + 1]


class LongPollASGI:
    """Serves the routes named ``routes`` (URL names, no arguments) as long polls and
    passes every other request to ``app`` untouched."""

    def __init__(self, app: ASGIApp, routes: Iterable[str]) -> None:
        self.app = app
        self.routes = tuple(routes)
        self._paths: frozenset[str] | None = None

    def paths(self) -> frozenset[str]:
        if self._paths is None:
            self._paths = frozenset(reverse(name) for name in self.routes)
        return self._paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") not in self.paths():
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive, settings.ETHER_MAX_BODY_BYTES)
        if body is None:
            return
        gone = asyncio.Event()
        watcher = asyncio.create_task(self._watch(receive, gone))
        try:
            await self._serve(scope, body, send, gone)
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher

    @staticmethod
    async def _watch(receive: Receive, gone: asyncio.Event) -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                gone.set()
                return

    async def _serve(self, scope: Scope, body: bytes, send: Send, gone: asyncio.Event) -> None:
        poll = LongPoll()
        layer = get_channel_layer()
        channel: str | None = None
        joined: str | None = None
        tried = False
        try:
            while True:
                poll.waiting = False
                poll.looks += 1
                # A task per look: its context (the request's database connection) is its own.
                answer = await asyncio.create_task(self._look(scope, body, poll, gone))
                if gone.is_set():
                    return
                if not poll.waiting:
                    for message in answer:
                        await send(message)
                    return
                if layer is not None and not tried and poll.group:
                    tried = True
                    try:
                        channel = await layer.new_channel()
                        await layer.group_add(poll.group, channel)
                        joined = poll.group
                    except Exception:
                        # Redis away: the periodic re-check alone finds new tasks.
                        log.warning("long poll cannot join %s", poll.group, exc_info=True)
                        channel = None
                    continue  # look once more: a ping between the look and the join is lost
                left = (poll.deadline or 0) - time.monotonic()
                await self._sleep(layer, channel, gone, max(0.0, left))
        finally:
            if joined is not None and channel is not None:
                with contextlib.suppress(Exception):
                    await layer.group_discard(joined, channel)

    async def _look(
        self, scope: Scope, body: bytes, poll: LongPoll, gone: asyncio.Event
    ) -> list[Message]:
        captured: list[Message] = []
        delivered = False

        async def look_receive() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            await gone.wait()
            return {"type": "http.disconnect"}

        async def look_send(message: Message) -> None:
            captured.append(message)

        await self.app({**scope, SCOPE_KEY: poll}, look_receive, look_send)
        return captured

    @staticmethod
    async def _sleep(layer: Any, channel: str | None, gone: asyncio.Event, left: float) -> None:
        """Until a ping, the client leaves, the deadline, or the re-check interval."""
        timeout = min(settings.ETHER_LONGPOLL_RECHECK_SECONDS, left)
        leaving = asyncio.ensure_future(gone.wait())
        waits = {leaving}
        if layer is not None and channel is not None:
            waits.add(asyncio.ensure_future(layer.receive(channel)))
        try:
            done, _ = await asyncio.wait(
                waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            failed = [w for w in done if w is not leaving and w.exception() is not None]
            if failed:
                # The channel layer is down: the timer alone wakes us, no busy loop.
                log.warning("long poll cannot hear pings: %s", failed[0].exception())
                await asyncio.wait({leaving}, timeout=timeout)
        finally:
            for waiter in waits:
                waiter.cancel()
            # Bounded: a receive cancelled inside channels-redis's BZPOPMIN can take until
            # its block ends to finish, and the waiter must answer at its deadline.
            for waiter in waits:
                waiter.add_done_callback(_consume)
            await asyncio.wait(waits, timeout=0.5)


def _consume(task: asyncio.Future[Any]) -> None:
    """A cancelled wait that ends after we stopped awaiting it: its outcome is read here,
    so asyncio does not log "exception was never retrieved"."""
    if not task.cancelled():
        task.exception()
