"""The step fast lane: ``POST /api/harness/tasks/{id}/steps`` without Django's request
machinery, when the step is the common case.

Why (issue 18, docs/performance.md §8): a harness narrates in steps, many a second, and
through Django a step cost ~10 ms of CPU — a dozen middlewares, DRF's parsing, throttling,
validation and rendering, a thread handed a new request context, the ORM building five
statements — where the database's own work is well under a millisecond. One process
sustained a small fraction of the rate of a bare ASGI server doing the same insert.

Here the ASGI handler reads the body on the event loop and queues the step for one
writer thread that keeps its database connection and takes the steps waiting for it
together: for each, the checks Django would make (Host, scheme, body, key through the
same cached lookup as ``HarnessKeyAuthentication``, the ``harness`` rate limit), then one
transaction for the batch (``steps_direct.step_record_batch``), in which each step says
yes or writes nothing. The answer of a step written is the full path's: the same status,
body, headers, request id, metrics and log line (tests/tasks/test_step_fastlane.py
compares them).

Everything that is not a plain yes goes, untouched, to Django (the body replayed): a
refusal of any kind, a replayed ``Idempotency-Key`` or ``client_step_id``, a body
StepIn would trim or refuse, a paused task, an unknown or revoked key, a throttled
caller, a database error. So every error document is still written in one place; the
lane itself answers only ``201`` and, past capacity, admission control's ``503
overloaded``. ``ETHER_STEP_FAST_LANE=0`` turns it off.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import queue
import re
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection, reset_queries
from django.http.request import split_domain_port, validate_host

from accounts.credentials import HARNESS_KEY_PREFIX, hash_secret
from api import ratelimit
from api.admission import Standing, refuse, standing_wait
from api.idempotency import MAX_KEY_LENGTH, fingerprint
from ether_site.logformat import request_id
from ether_site.observability import record_request, sane_request_id
from tasks.harnesses.auth import app_for_key_hash
from tasks.run_apis import StepsAPI
from tasks.services import steps_direct

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger(__name__)

STEPS_PATH = re.compile(r"/api/harness/tasks/([^/]+)/steps")
ROUTE = "harness-steps"


class StepFastLane:
    """Wraps the HTTP application, in front of admission control (api.admission), which
    the steps it hands on pass as any request; its own steps are bounded by ``full``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.writer = Writer()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = STEPS_PATH.fullmatch(scope.get("path", "")) if scope["type"] == "http" else None
        if match is None or scope.get("method") != "POST" or not steps_direct.enabled():
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = _headers(scope)
        try:
            body, complete = await _read_body(receive, headers)
        except ClientGone:
            return
        rid = sane_request_id(headers.get("x-request-id")) or uuid.uuid4().hex
        answer = None
        if complete:
            wait = self.writer.allowed_wait()
            job = Job(scope, headers, body, match.group(1), rid, time.monotonic(), wait)
            answer = OVERLOADED if self.writer.full() else await self.writer.submit(job)
        if answer is OVERLOADED:
            # Past capacity, as api.admission: a fast 503 that has done nothing, rather
            # than a queue that grows by the second (issue 18).
            await refuse(send, writes=True, where="step_lane")
            return
        if answer is None:
            await self.app(scope, _replay(body, complete, receive), send)
            return
        payload, response_headers = answer
        await send({"type": "http.response.start", "status": 201, "headers": response_headers})
        await send({"type": "http.response.body", "body": payload})
        context = request_id.set(rid)
        try:
            record_request(
                method="POST",
                full_path=_full_path(scope),
                route=ROUTE,
                status=201,
                elapsed=time.perf_counter() - started,
            )
        finally:
            request_id.reset(context)


@dataclass(frozen=True)
class Job:
    scope: Scope
    headers: dict[str, str]
    body: bytes
    task_id: str
    rid: str
    queued_at: float
    wait: float  # how long it may wait for the writer (Writer.allowed_wait)


class ClientGone(Exception):
    """The client disconnected before its body was read."""


# A job's answer: the 201's body and headers, None (Django answers), or OVERLOADED (503).
OVERLOADED: Any = object()
Answer = Any


class Writer:
    """The lane's writer: a thread that takes the steps waiting for it, up to ``BATCH``,
    writes them in one transaction (``steps_direct.step_record_batch``) and hands the
    answers back to their event loops in one call each.

    Why one thread and a queue, not a thread per request: the hop to a thread, the
    ``BEGIN`` and the ``COMMIT`` were a large part of a step's cost; on SQLite every
    writer waits for the one write lock anyway, and on Postgres several writers of one
    task queue on its row lock. One writer taking what is waiting pays them once per
    batch (measured, docs/performance.md §8). With no load a batch is one step.
    """

    # Up to 256 steps a batch. A batch's statements are per task (its guard, its seq
    # allocation), so across many tasks a small batch paid them for nearly every step: at
    # 32 a batch, steps spread over 50 tasks were refused from 2,800/s on SQLite and
    # 1,300/s on Postgres; at 256, 3,100/s and 1,600/s were taken whole, one task the
    # same (issue 18, docs/performance.md §8 "Seventh pass"). Only what waits is taken,
    # so the batch grows with the backlog and a lone step is still a batch of one.
    BATCH = 256

    def __init__(self) -> None:
        self.queue: queue.SimpleQueue[tuple[Job, asyncio.Future[Answer]]] = queue.SimpleQueue()
        self.thread: threading.Thread | None = None
        self.lock = threading.Lock()
        self.pending = 0  # submitted and not yet answered; read and written on the loop
        self.backlog = Standing()  # whether the steps it takes have waited long

    # Admission control as api.admission has it, for steps that hold no thread while they
    # wait: a step waits for the writer at most ETHER_ADMISSION_WAIT_MS (or, when for 100 ms
    # every step it took had waited longer, ETHER_ADMISSION_STANDING_WAIT_MS) and is
    # then refused, having done nothing (``_run``); and at most QUEUE_FACTOR times as many steps
    # as admission lets into Django (writes in flight + queued: 1,088 by default) wait at
    # all, past which a step is refused at once. The wait bounds the latency of the steps
    # taken; the count bounds the memory of a flood.
    QUEUE_FACTOR = 16

    def full(self) -> bool:
        if settings.ETHER_MAX_INFLIGHT_REQUESTS <= 0:
            return False  # admission control is off
        limit = max(1, settings.ETHER_MAX_INFLIGHT_WRITES) + max(0, settings.ETHER_MAX_QUEUED)
        return self.pending >= limit * self.QUEUE_FACTOR

    # However short ETHER_ADMISSION_WAIT_MS, a step may wait this long: about one batch.
    MIN_WAIT = 0.02

    def allowed_wait(self) -> float:
        """How long a step submitted now may wait for the writer (on the loop): decided
        as it joins the queue, as api.admission does."""
        if self.pending == 0:
            self.backlog.empty()  # nothing waits: however long the writer has idled
        wait = self.backlog.wait(settings.ETHER_ADMISSION_WAIT_MS / 1000, standing_wait())
        return max(wait, self.MIN_WAIT)

    def overdue(self, job: Job) -> bool:
        if settings.ETHER_MAX_INFLIGHT_REQUESTS <= 0:
            return False
        return time.monotonic() - job.queued_at > job.wait

    def submit(self, job: Job) -> asyncio.Future[Answer]:
        self._start()
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self.pending += 1
        future.add_done_callback(self._done)
        self.queue.put((job, future))
        return future

    def _done(self, _future: asyncio.Future[Answer]) -> None:
        self.pending -= 1

    def _start(self) -> None:
        if self.thread is not None:
            return
        with self.lock:
            if self.thread is None:
                # One writer: on SQLite transactions are serialized anyway, and on Postgres
                # a batch in one transaction did more than several writers queueing on one
                # task's row lock (measured, issue 18).
                self.thread = threading.Thread(target=self._run, name="step-lane", daemon=True)
                self.thread.start()

    def _run(self) -> None:
        while True:
            taken = [self.queue.get()]
            drained = False
            while len(taken) < self.BATCH:
                try:
                    taken.append(self.queue.get_nowait())
                except queue.Empty:
                    drained = True
                    break
            late = [self.overdue(job) for job, _ in taken]
            # Oldest first, so that the newest step taken says whether the queue stands.
            now, standing = time.monotonic(), standing_wait()
            for (job, _), overdue in zip(taken, late, strict=True):
                # A step refused for its wait counts as one that waited too long.
                self.backlog.left(math.inf if overdue else now - job.queued_at, standing)
            if drained:
                # This batch takes every step waiting: a step queued from now on joins a
                # queue that was just empty.
                self.backlog.empty()
            try:
                written = iter(
                    _steps([job for (job, _), o in zip(taken, late, strict=True) if not o])
                )
            except Exception:
                log.exception("the step lane failed; the full path answers these steps")
                written = iter([None] * len(taken))
            answers = [OVERLOADED if o else next(written) for o in late]
            by_loop: dict[asyncio.AbstractEventLoop, list[tuple[Any, Answer]]] = {}
            for (_job, future), answer in zip(taken, answers, strict=True):
                by_loop.setdefault(future.get_loop(), []).append((future, answer))
            for loop, results in by_loop.items():
                with contextlib.suppress(RuntimeError):  # that loop is gone (a test's)
                    loop.call_soon_threadsafe(_resolve, results)


def _resolve(results: list[tuple[asyncio.Future[Answer], Answer]]) -> None:
    for future, answer in results:
        if not future.done():  # cancelled: the client left (its step is stored all the same)
            future.set_result(answer)


def _headers(scope: Scope) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in scope.get("headers", []):
        key = name.decode("latin-1").lower()
        if key in out:
            out[key] = "\0"  # repeated: let Django decide what it means
        else:
            out[key] = value.decode("latin-1")
    return out


async def _read_body(receive: Receive, headers: dict[str, str]) -> tuple[bytes, bool]:
    """The whole body when it is within ``ETHER_MAX_BODY_BYTES``; else what was read and
    False (BodyLimitMiddleware answers the 413)."""
    limit = settings.ETHER_MAX_BODY_BYTES
    try:
        declared = int(headers.get("content-length", ""))
    except ValueError:
        return b"", False
    if declared > limit:
        return b"", False
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise ClientGone  # nobody to answer, and the disconnect is not sent twice
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            return b"".join(chunks), False
        if not message.get("more_body"):
            return b"".join(chunks), True


def _replay(body: bytes, complete: bool, receive: Receive) -> Receive:
    """The request as Django would have read it: what was read first, then the rest."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": not complete}
        return await receive()

    return replayed


def _full_path(scope: Scope) -> str:
    query = scope.get("query_string", b"").decode("latin-1")
    return scope["path"] + (f"?{query}" if query else "")


def _is_secure(scope: Scope, headers: dict[str, str]) -> bool:
    proxy = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
    if proxy:
        header, value = proxy
        name = header.removeprefix("HTTP_").replace("_", "-").lower()
        forwarded = headers.get(name)
        if forwarded is not None:
            return forwarded.split(",", 1)[0].strip() == value
    return scope.get("scheme") == "https"


def _host_allowed(headers: dict[str, str]) -> bool:
    if settings.USE_X_FORWARDED_HOST and "x-forwarded-host" in headers:
        return False  # Django's rules for it are longer than this lane needs
    domain, _port = split_domain_port(headers.get("host", ""))
    allowed = settings.ALLOWED_HOSTS
    if settings.DEBUG and not allowed:
        allowed = [".localhost", "127.0.0.1", "[::1]"]
    return bool(domain) and validate_host(domain, allowed)


@dataclass(frozen=True)
class Ready:
    job: Job
    pending: steps_direct.Pending
    secure: bool


def _steps(jobs: list[Job]) -> list[Answer]:
    """In a lane thread: each job's answer, or None (Django answers it)."""
    try:
        ready = [_ready(job) for job in jobs]
        taken = [r for r in ready if r is not None]
        written = steps_direct.step_record_batch([r.pending for r in taken]) if taken else []
    except DatabaseError:
        connection.close_if_unusable_or_obsolete()
        return [None] * len(jobs)  # the full path answers them (503, or it works)
    finally:
        # What Django does at the end of each request: with DEBUG on, every statement is
        # kept in the connection's log until then (a step's body with it: ~14 MB over 240
        # big steps in tests/tasks/test_realtime_server.py).
        reset_queries()
        if connection.settings_dict.get("OPTIONS", {}).get("pool"):
            connection.close()  # back to the Postgres pool, for Django's own requests
    answers = iter(written)
    out: list[Answer] = []
    for item in ready:
        answer = next(answers) if item is not None else None
        if item is None or answer is None:
            out.append(None)
            continue
        payload = steps_direct.answer_bytes(answer)
        out.append((payload, _response_headers(len(payload), item.job.rid, item.secure)))
    return out


def _ready(job: Job) -> Ready | None:
    """The step of a request the lane may write: authenticated, within its rate, a body
    StepIn takes unchanged; else None."""
    headers, scope = job.headers, job.scope
    secure = _is_secure(scope, headers)
    if (settings.SECURE_SSL_REDIRECT and not secure) or not _host_allowed(headers):
        return None
    if headers.get("content-type", "").split(";", 1)[0].strip().lower() != "application/json":
        return None
    scheme, _, key = headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not key.startswith(HARNESS_KEY_PREFIX) or " " in key:
        return None
    try:
        data = json.loads(job.body)
    except ValueError:
        return None
    write = steps_direct.plain_step(job.task_id, data)
    if write is None:
        return None
    idempotency_key = headers.get("idempotency-key")
    if idempotency_key is not None and (
        not idempotency_key.strip() or len(idempotency_key) > MAX_KEY_LENGTH
    ):
        return None
    app = app_for_key_hash(hash_secret(key), read_only=True)
    if app is None or app.revoked_at is not None:
        return None
    counted = scope.setdefault(ratelimit.COUNTED, {})
    for scope_name in ratelimit.view_scopes(StepsAPI, "POST"):
        # Kept with the request: handed on, it is not counted twice (api.ratelimit).
        counted[scope_name] = ratelimit.hit(scope_name, app.rate_identity)
        if counted[scope_name] is not None:
            return None  # over the limit: the full path answers the 429
    idempotency = None
    if idempotency_key is not None:
        idempotency = steps_direct.Idempotency(
            scope=app.idempotency_scope(),
            key=idempotency_key,
            fingerprint=fingerprint("POST", scope["path"], data),
        )
    pending = steps_direct.Pending(app=app, write=write, idempotency=idempotency)
    return Ready(job=job, pending=pending, secure=secure)


def _response_headers(length: int, rid: str, secure: bool) -> list[tuple[bytes, bytes]]:
    """What the full path's middlewares and DRF put on a 201 of this route."""
    out = [
        ("Content-Type", "application/json"),
        ("Allow", "POST, OPTIONS"),
    ]
    if settings.SECURE_HSTS_SECONDS and secure:
        hsts = f"max-age={settings.SECURE_HSTS_SECONDS}"
        if settings.SECURE_HSTS_INCLUDE_SUBDOMAINS:
            hsts += "; includeSubDomains"
        if settings.SECURE_HSTS_PRELOAD:
            hsts += "; preload"
        out.append(("Strict-Transport-Security", hsts))
    if settings.SECURE_CONTENT_TYPE_NOSNIFF:
        out.append(("X-Content-Type-Options", "nosniff"))
    if settings.SECURE_REFERRER_POLICY:
        out.append(("Referrer-Policy", settings.SECURE_REFERRER_POLICY))
    if settings.SECURE_CROSS_ORIGIN_OPENER_POLICY:
        out.append(("Cross-Origin-Opener-Policy", settings.SECURE_CROSS_ORIGIN_OPENER_POLICY))
    out += [
        ("X-Frame-Options", settings.X_FRAME_OPTIONS),
        ("X-Request-ID", rid),
        ("Content-Length", str(length)),
    ]
    return [(name.encode("latin-1"), value.encode("latin-1")) for name, value in out]
