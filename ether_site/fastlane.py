"""The step fast lane: ``POST /api/harness/tasks/{id}/steps`` without Django's request
machinery, when the step is the common case.

Why (issue 18, docs/performance.md §8): a harness narrates in steps, many a second, and
through Django a step cost ~10 ms of CPU — a dozen middlewares, DRF's parsing, throttling,
validation and rendering, a thread handed a new request context, the ORM building five
statements — where the database's own work is well under a millisecond. One process
sustained a small fraction of the rate of a bare ASGI server doing the same insert.

Here the ASGI handler reads the body on the event loop, checks what is cheap to check
(the route, the Host, the scheme, the body's size and shape, the key), and hands the write
to a small pool of threads that keep their database connection: authentication (the
same cached lookup as ``HarnessKeyAuthentication``), the ``harness`` rate limit, and
``steps_direct.step_record_direct``, which says yes or writes nothing. Its answer is the
full path's: the same status, body, headers, request id, metrics and log line
(tests/tasks/test_step_fastlane.py compares them).

Everything that is not a plain yes goes, untouched, to Django (the body replayed): a
refusal of any kind, a replayed ``Idempotency-Key`` or ``client_step_id``, a body
StepIn would trim or refuse, a paused task, an unknown or revoked key, a throttled
caller, a database error. So every error document is still written in one place, and
the lane never answers anything but ``201``. ``ETHER_STEP_FAST_LANE=0`` turns it off.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection
from django.http.request import split_domain_port, validate_host

from accounts.credentials import HARNESS_KEY_PREFIX, hash_secret
from api import ratelimit
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

STEPS_PATH = re.compile(r"/api/harness/tasks/([^/]+)/steps")
ROUTE = "harness-steps"


class Fallback(Exception):
    """Not for the lane: Django answers."""


class StepFastLane:
    """Wraps the HTTP application (inside admission control, so the lane's writes count
    against the same limits); see the module."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._pool: ThreadPoolExecutor | None = None

    def pool(self) -> ThreadPoolExecutor:
        # A few threads, each keeping its connection (SQLite) or taking one from the pool
        # per write (Postgres): admission control already bounds the writes in flight.
        if self._pool is None:
            workers = max(1, min(4, settings.ETHER_MAX_INFLIGHT_WRITES or 4))
            self._pool = ThreadPoolExecutor(workers, thread_name_prefix="step-lane")
        return self._pool

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = STEPS_PATH.fullmatch(scope.get("path", "")) if scope["type"] == "http" else None
        if match is None or scope.get("method") != "POST" or not steps_direct.enabled():
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = _headers(scope)
        body, complete = await _read_body(receive, headers)
        answer = None
        rid = sane_request_id(headers.get("x-request-id")) or uuid.uuid4().hex
        if complete:
            loop = asyncio.get_running_loop()
            try:
                answer = await loop.run_in_executor(
                    self.pool(), _step, scope, headers, body, match.group(1), rid
                )
            except Fallback:
                answer = None
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
            # The client went away: Django sees the same disconnect.
            return b"".join(chunks), False
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


def _step(
    scope: Scope, headers: dict[str, str], body: bytes, task_id: str, rid: str
) -> tuple[bytes, list[tuple[bytes, bytes]]] | None:
    """In a lane thread: the write, or None (Django answers)."""
    secure = _is_secure(scope, headers)
    if (settings.SECURE_SSL_REDIRECT and not secure) or not _host_allowed(headers):
        return None
    if headers.get("content-type", "").split(";", 1)[0].strip().lower() != "application/json":
        return None
    scheme, _, key = headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not key.startswith(HARNESS_KEY_PREFIX) or " " in key:
        return None
    try:
        data = json.loads(body)
    except ValueError:
        return None
    write = steps_direct.plain_step(task_id, data)
    if write is None:
        return None
    idempotency_key = headers.get("idempotency-key")
    if idempotency_key is not None and (
        not idempotency_key.strip() or len(idempotency_key) > MAX_KEY_LENGTH
    ):
        return None
    context = request_id.set(rid)
    try:
        app = app_for_key_hash(hash_secret(key))
        if app is None or app.revoked_at is not None:
            return None
        for scope_name in ratelimit.view_scopes(StepsAPI, "POST"):
            if ratelimit.hit(scope_name, app.rate_identity) is not None:
                # Over the limit: the full path counts it again and answers the 429.
                return None
        idempotency = None
        if idempotency_key is not None:
            idempotency = steps_direct.Idempotency(
                scope=app.idempotency_scope(),
                key=idempotency_key,
                fingerprint=fingerprint("POST", scope["path"], data),
            )
        answer = steps_direct.step_record_direct(app=app, write=write, idempotency=idempotency)
    except DatabaseError:
        connection.close_if_unusable_or_obsolete()
        return None  # the full path answers it (503 database_unavailable, or it works)
    finally:
        request_id.reset(context)
        if connection.settings_dict.get("OPTIONS", {}).get("pool"):
            connection.close()  # back to the Postgres pool, for Django's own requests
    if answer is None:
        return None
    payload = steps_direct.answer_bytes(answer)
    return payload, _response_headers(len(payload), rid, secure)


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
