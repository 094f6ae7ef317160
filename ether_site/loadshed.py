"""Past what the event loop itself can read, refuse API requests as they are read.

Why (issue 18, docs/performance.md §8): admission control (api.admission) and the step
lane (ether_site.fastlane) refuse what they cannot take within ``ETHER_ADMISSION_WAIT_MS``
of the application seeing a request. But a request reaches the application only when the
one event loop of the process gets to it. Offered more than the loop can read, a
process fell behind by seconds before any of that code ran, and refusals took as long
as steps: at 1.8x the rate one process sustained across 50 tasks, p99 3 s for both, and at
2.5x, 5.5 s.

So the loop keeps a timer due every ``INTERVAL`` and notes how late it runs: the lag is
how long anything that became ready now waits before the loop turns to it. While the
loop is behind by more than ``ETHER_SHED_LAG_MS`` on two ticks in a row (one late tick is
a single slow callback, not a queue) and at least ``ETHER_SHED_MIN_INFLIGHT`` API requests
are in flight in the process, ``EtherWebRequest`` answers each API request it reads with
the ``503 overloaded`` problem and ``Retry-After`` before daphne builds an application for
it: no scope, no Django, no database. A refusal then costs a fraction of a request, and
the loop catches up.

And a ceiling (``ETHER_SHED_MAX_INFLIGHT``): behind or not, a process refuses while that
many such requests are in flight and their queue stands (none of them answered within
the standing wait for a while; api.admission.Standing). The lag alone let a loop that had
just caught up take whatever it read next, and fall behind again: refusals and accepted
steps alternated at p50s of 100 ms and 600 ms (docs/performance.md §8, seventh and ninth
passes). A burst above the ceiling that keeps moving is let in.

Why the crowd: a loop can be behind with no queue of requests at all. Sending each step's
frame to 1,000 WebSockets kept one process's loop over 50 ms late on a slow machine
while steps came at 20 a second, and the lag alone refused 31 of 200 steps that the
process had time for (docs/performance.md §8, run F). Refusing helps only when requests
are what the loop is behind on; at a few in flight it would refuse the very requests the
watchers are waiting to see. Streams (WebSocket upgrades, SSE, the claim-next
long poll) are never refused here, as haproxy's stream backend never counts them
(deploy/haproxy/ether.cfg.in): a reconnect storm must be let in, and a watcher costs
nothing once connected. Neither are pages, health checks or metrics.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import time
from typing import Any

from django.conf import settings

from api import metrics
from api.admission import READ_METHODS, Standing, refusal, refusal_headers, standing_wait
from api.problems import is_api_path
from ether_site import wire

log = logging.getLogger(__name__)

# The paths of long-lived requests; the same set as haproxy's `stream` ACL.
STREAM_PATH = re.compile(
    r"/api/(tasks/[^/]+|activity)/events|/api/realtime|/api/harness/claim-next"
)


def sheddable(path: str) -> bool:
    """Whether a request for ``path`` may be refused while the loop is behind."""
    return is_api_path(path) and STREAM_PATH.fullmatch(path) is None


class LoopLag:
    """How late the event loop runs a timer due every ``INTERVAL``; ``behind`` while it
    has run more than ``limit`` late twice in a row. ``limit`` 0 never says behind. And
    how many sheddable requests are in flight: ``refuse`` says yes only while behind with
    at least ``crowd`` of them."""

    INTERVAL = 0.01

    def __init__(self, limit: float, crowd: int = 0, ceiling: int = 0) -> None:
        self.limit = limit
        # Refuse only while at least this many sheddable requests are in flight.
        self.crowd = crowd
        # ...and, behind or not, while this many are and they stand (0: no ceiling).
        self.ceiling = ceiling
        # The requests in flight as one queue: standing when for a while none of them was
        # answered within ``standing_wait`` (api.admission.Standing, CoDel's measure).
        self.queue = Standing()
        self.standing_wait = 0.025
        # Sheddable requests handed to the application and not yet answered or gone.
        self.inflight = 0
        self.lag = 0.0  # of the last tick, in seconds
        self.behind = False
        self.refused = 0  # since the last log line
        self._logged_at = float("-inf")
        self._late_before = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._due = 0.0

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        if self.limit <= 0 or self._loop is not None:
            return
        self._loop = loop
        self._due = loop.time() + self.INTERVAL
        loop.call_at(self._due, self._tick)

    def _tick(self) -> None:
        assert self._loop is not None
        now = self._loop.time()
        self.lag = now - self._due
        late = self.lag > self.limit
        behind = late and self._late_before
        self._late_before = late
        if behind != self.behind:
            self._changed(behind)
        self._due = now + self.INTERVAL
        self._loop.call_at(self._due, self._tick)

    # Under overload the state can flip several times a second: one line per this many
    # seconds at most, with what was refused since the last.
    LOG_EVERY = 10.0

    def _changed(self, behind: bool) -> None:
        self.behind = behind
        assert self._loop is not None
        now = self._loop.time()
        if behind and now - self._logged_at >= self.LOG_EVERY:
            self._logged_at = now
            log.warning(
                "the event loop is %.0f ms behind: refusing API requests (503 overloaded) "
                "while it is and %d or more are in flight (%d now); %d refused since the "
                "last such line",
                self.lag * 1000,
                self.crowd,
                self.inflight,
                self.refused,
                extra={
                    "lag_ms": round(self.lag * 1000, 1),
                    "inflight": self.inflight,
                    "refused": self.refused,
                },
            )
            self.refused = 0

    def shedding(self) -> bool:
        """Whether sheddable requests are being refused now."""
        if self.behind and self.inflight >= self.crowd:
            return True
        return 0 < self.ceiling <= self.inflight and self.queue.standing()

    def admitted(self) -> float:
        """A sheddable request goes to the application now; returns when."""
        self.inflight += 1
        return time.monotonic()

    def answered(self, since: float) -> None:
        """A request admitted at ``since`` was answered, or its client left."""
        self.inflight -= 1
        if self.inflight == 0:
            self.queue.empty()
        else:
            self.queue.left(time.monotonic() - since, self.standing_wait)

    def refuse(self, count: int = 1) -> bool:
        """Whether to refuse a sheddable request now (and count ``count`` if so)."""
        if not self.shedding():
            return False
        self.refused += count
        # The labelled child, looked up once: ``labels()`` per refusal was 5% of a
        # process refusing thousands a second (issue 18).
        _REFUSALS.inc(count)
        return True


_REFUSALS = metrics.OVERLOAD_REFUSALS.labels("event_loop")


# The process's one monitor, started with the server (ether_site.serve).
MONITOR = LoopLag(0)


def start() -> None:
    """Starts the monitor on the running event loop, with ETHER_SHED_LAG_MS."""
    MONITOR.limit = max(0, settings.ETHER_SHED_LAG_MS) / 1000
    MONITOR.crowd = max(0, settings.ETHER_SHED_MIN_INFLIGHT)
    MONITOR.ceiling = max(0, settings.ETHER_SHED_MAX_INFLIGHT)
    MONITOR.standing_wait = standing_wait()
    # Called as the reactor starts, before its asyncio loop runs: the loop daphne set.
    MONITOR.start(asyncio.get_event_loop())


def shed(request: Any) -> bool:
    """Answers daphne's ``request`` with the 503 overloaded problem, through daphne's own
    reply path, when the loop is behind in a crowd and its path may be refused; else
    False, and a sheddable request is counted in flight until ``done(request)``."""
    if not sheddable(request.path.decode("latin-1")):
        return False
    if not MONITOR.refuse():
        request.ether_admitted = admit()
        request.ether_inflight = True
        return False
    request.request_start = time.time()  # what daphne's duration() reads
    payload = refusal(writes=request.method.decode("latin-1") not in READ_METHODS)
    request.handle_reply(
        {"type": "http.response.start", "status": 503, "headers": refusal_headers(len(payload))}
    )
    request.handle_reply({"type": "http.response.body", "body": payload})
    return True


def done(request: Any) -> None:
    """``request`` was answered, or its client went away: no longer in flight."""
    if getattr(request, "ether_inflight", False):
        request.ether_inflight = False
        release(request.ether_admitted)


def admit() -> float:
    """A sheddable request goes to the application: counted in flight; returns when."""
    metrics.API_INFLIGHT.inc()
    return MONITOR.admitted()


def release(since: float) -> None:
    """A request ``admit`` counted at ``since`` was answered, or its client left."""
    MONITOR.answered(since)
    metrics.API_INFLIGHT.dec()


# Refusing as the bytes arrive. Past what the process can read, the refusal above still
# cost what Twisted spends on any request: its line-by-line parse of the head, a Request,
# daphne's WebRequest, the reply's headers and the cleanup, about half the event loop's
# time in a profile at 4,500 steps/s offered to one process (py-spy, issue 18). A refusal
# that costs nearly what a step does cannot keep up with twice the steps a process takes,
# and the loop fell seconds behind refusing. So while the process is shedding, a
# connection between requests hands its bytes to ``refuse_raw`` first: it reads the whole
# requests there (ether_site.wire) and answers each sheddable one with the same 503
# document, written straight to the socket. The first it may not refuse, or cannot read,
# goes to Twisted's parser with every byte after it, as it would have.


@functools.cache
def _raw_refusal(writes: bool) -> bytes:
    payload = refusal(writes)
    # Field names as Twisted writes them (Content-Type), so both refusals read the same.
    head = b"HTTP/1.1 503 Service Unavailable\r\n" + b"".join(
        wire.header_case(name) + b": " + value + b"\r\n"
        for name, value in refusal_headers(len(payload))
    )
    return head + b"\r\n" + payload


def refuse_raw(data: bytes) -> tuple[int, list[bytes], bool]:
    """The whole sheddable requests at the start of ``data``: how many bytes they take,
    the answer to each, and whether the last asked to close the connection (nothing
    after it is read). ``(0, [], False)`` when the first request is not one to refuse
    here."""
    pos, answers = 0, []
    while (request := wire.whole_request(data, pos)) is not None:
        if not sheddable(request.target.partition(b"?")[0].decode("latin-1")):
            break
        answers.append(_raw_refusal(request.method.decode("latin-1") not in READ_METHODS))
        pos = request.end
        if request.close:
            return pos, answers, True
    return pos, answers, False
