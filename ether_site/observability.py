"""One log line and one count per HTTP request, each with its request id.

The outermost middleware. It takes the client's ``X-Request-ID`` when it is sane (1 to
128 characters of ``A-Z a-z 0-9 . _ : -``, nothing shaped like one of our secrets) or
makes one, returns it on every response, and puts it on every log line written while
the request is served (``ether_site.logformat``). Then it counts the request in
``ether_http_requests_total`` and its duration in ``ether_http_request_duration_seconds``
under the URL pattern's name (never the raw path, which would give a series per task),
and writes one line to the ``ether.request`` logger: method, path (secrets redacted),
route, status, milliseconds. Probes and scrapes (``/healthz``, ``/readyz``,
``/metrics``) are logged at DEBUG, so a load balancer polling every second does not
fill the log.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from api import metrics
from ether_site.logformat import request_id
from ether_site.redaction import looks_secret, redact

log = logging.getLogger("ether.request")

HEADER = "X-Request-ID"
_SANE = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
QUIET_ROUTES = frozenset({"healthz", "readyz", "metrics"})
# A label per method a client makes up would be a series per made-up method.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def sane_request_id(raw: str | None) -> str | None:
    if raw is None or not _SANE.fullmatch(raw) or looks_secret(raw):
        return None
    return raw


def route_of(request: HttpRequest) -> str:
    """The URL pattern's name (``harness-steps``, ``admin:index``), its pattern when it
    has no name, ``static`` for static files and ``unmatched`` for anything else."""
    match = getattr(request, "resolver_match", None)
    if match is not None:
        if match.url_name:
            return match.view_name
        return match.route or "unnamed"
    if request.path_info.startswith(settings.STATIC_URL):
        return "static"
    return "unmatched"


def record_request(*, method: str, full_path: str, route: str, status: int, elapsed: float) -> None:
    """The request's count, duration and log line (also written by answers that do not
    pass through Django: the step fast lane, ether_site.fastlane)."""
    label = method if method in METHODS else "other"
    metrics.REQUESTS.labels(route, label, str(status)).inc()
    metrics.REQUEST_SECONDS.labels(route, label).observe(elapsed)
    level = logging.DEBUG if route in QUIET_ROUTES else logging.INFO
    if log.isEnabledFor(level):
        path = redact(full_path)
        log.log(
            level,
            "%s %s %s %.1fms",
            method,
            path,
            status,
            elapsed * 1000,
            extra={
                "method": method,
                "path": path,
                "route": route,
                "status": status,
                "duration_ms": round(elapsed * 1000, 1),
            },
        )


class RequestObservabilityMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        rid = sane_request_id(request.headers.get(HEADER)) or uuid.uuid4().hex
        request.request_id = rid  # type: ignore[attr-defined]
        context = request_id.set(rid)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            elapsed = time.perf_counter() - started
            response[HEADER] = rid
            record_request(
                method=request.method or "",
                full_path=request.get_full_path(),
                route=route_of(request),
                status=response.status_code,
                elapsed=elapsed,
            )
            return response
        finally:
            request_id.reset(context)
