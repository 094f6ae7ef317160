"""Middleware that turns transport-level failures into problem documents."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation, TooManyFieldsSent
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse

from api.params import is_ascii_int
from api.problems import (
    PROBLEM_CONTENT_TYPE,
    database_unavailable_json,
    is_api_path,
    json_problem,
    status_problem,
)

log = logging.getLogger(__name__)


# Headers of a refusal that still mean something in its problem document.
_KEPT_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate")


class ApiProblemMiddleware:
    """On /api/ and /v1/, every error answer is a problem document, DEBUG on or off.

    Our views and DRF already answer problems. What is left is what Django decides before
    or around them: a disallowed ``Host`` (raised in ``CommonMiddleware``), too many query
    parameters, a CSRF page, and with ``DEBUG`` on (``make run``) its HTML debug pages for
    400, 404 and 500, which replace the ``handler*`` views. Django turns those exceptions
    into responses inside the middleware chain, so no ``process_exception`` sees them:
    this middleware is the outermost one and rewrites any error answer on an API path that
    is not already a problem into the problem of its status. Product pages keep HTML.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not is_api_path(request.path_info):
            return self.get_response(request)
        try:
            response = self.get_response(request)
        except Exception as exc:
            # Django's own answer to an exception failed in turn (DEBUG's page reads
            # request.GET again, which raises TooManyFieldsSent again): still a problem.
            if isinstance(exc, SuspiciousOperation):
                return status_problem(400)
            log.exception("unhandled error on %s", request.path_info)
            return status_problem(500)
        if response.status_code < 400:
            return response
        if response.get("Content-Type", "").startswith(PROBLEM_CONTENT_TYPE):
            return response
        problem = status_problem(response.status_code)
        for name in _KEPT_HEADERS:
            if name in response:
                problem[name] = response[name]
        return problem


def _too_large(limit: int) -> HttpResponse:
    return json_problem(
        413,
        "payload_too_large",
        "Payload too large",
        f"Request bodies are limited to {limit} bytes (ETHER_MAX_BODY_BYTES).",
    )


class BodyLimitMiddleware:
    """Answers 413 before any view parses a body over ``ETHER_MAX_BODY_BYTES``.

    The declared Content-Length is checked first so a huge body is refused unread; a body
    sent without one (chunked) is measured after it has been read.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        # Postgres cannot compare text with a NUL in it: the lookup would be a 500. Such a
        # path names nothing (found by tests/reliability/test_bad_input.py on Postgres).
        if "\x00" in request.path:
            return json_problem(404, "not_found", "Not found", "No such resource.")
        try:
            query = request.GET
        except TooManyFieldsSent:
            return json_problem(
                400, "bad_request", "Bad request", "Too many query parameters (at most 1000)."
            )
        if "\x00" in request.META.get("QUERY_STRING", "") or any(
            "\x00" in value for values in query.lists() for value in [values[0], *values[1]]
        ):
            return json_problem(400, "bad_request", "Bad request", "NUL in the query string.")
        limit = settings.ETHER_MAX_BODY_BYTES
        raw_length = request.META.get("CONTENT_LENGTH") or "0"
        # ASCII digits only (api.params): int() would also read " 12" or "+12".
        if not is_ascii_int(raw_length):
            return json_problem(
                400, "bad_request", "Bad request", "Content-Length is not a number."
            )
        declared = int(raw_length)
        if declared > limit:
            return _too_large(limit)
        if request.method in {"POST", "PUT", "PATCH"}:
            try:
                body = request.body
            except RequestDataTooBig:
                return _too_large(limit)
            if len(body) > limit:
                return _too_large(limit)
        return self.get_response(request)


class DatabaseUnavailableMiddleware:
    """A locked or unreachable database outside DRF views is a 503, never a 500."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, OperationalError | InterfaceError):
            log.warning("database unavailable: %s", exception)
            return database_unavailable_json()
        return None


class ContentSecurityPolicyMiddleware:
    """Sends ``settings.ETHER_CSP`` with every HTML page: the admin, the API docs and the
    task pages. Their scripts are all files under /static/, so no page needs an inline
    script; a sanitizer slip in rendered markdown then still cannot run one."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        policy = settings.ETHER_CSP
        content_type = response.get("Content-Type", "")
        if policy and content_type.startswith("text/html"):
            response.headers.setdefault("Content-Security-Policy", policy)
        return response
