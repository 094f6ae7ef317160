"""RFC 9457 problem documents: the one place where any error becomes an HTTP answer.

Every error path ends here: domain exceptions from services, DRF's own exceptions
(auth, parse, 405, 415), Django's 404/400/500 handlers and a database that stays locked.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions as drf
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from api.errors import DomainError, Kind
from api.views import ProblemSchema

log = logging.getLogger(__name__)

PROBLEM_CONTENT_TYPE = "application/problem+json"
TYPE_BASE = "https://ether.dev/problems/"
DB_RETRY_AFTER_SECONDS = 2

STATUS_BY_KIND: dict[Kind, int] = {
    "invalid": 400,
    "unauthenticated": 401,
    "forbidden": 403,
    "not_found": 404,
    "conflict": 409,
    "precondition_failed": 412,
    "too_large": 413,
    "unprocessable": 422,
    "unavailable": 503,
}

# DRF's exception classes, by the code and title we answer with.
DRF_CODES: list[tuple[type[drf.APIException], str, str]] = [
    (drf.NotAuthenticated, "not_authenticated", "Not authenticated"),
    (drf.AuthenticationFailed, "not_authenticated", "Not authenticated"),
    (drf.PermissionDenied, "forbidden", "Forbidden"),
    (drf.NotFound, "not_found", "Not found"),
    (drf.MethodNotAllowed, "method_not_allowed", "Method not allowed"),
    (drf.UnsupportedMediaType, "unsupported_media_type", "Unsupported media type"),
    (drf.ParseError, "malformed_json", "Malformed JSON"),
    (drf.NotAcceptable, "not_acceptable", "Not acceptable"),
    (drf.Throttled, "throttled", "Too many requests"),
    (drf.ValidationError, "validation_error", "Invalid request"),
]


def problem_body(status: int, code: str, title: str, detail: str, **extra: Any) -> dict[str, Any]:
    """The document as ``ProblemSchema`` (the schema's) renders it, then the members an
    error adds of its own (``lease_held``'s ``holder_app_id`` and ``lease_expires_at``)."""
    fields = {"type": TYPE_BASE + code, "title": title, "status": status, "detail": detail}
    body = dict(ProblemSchema({**fields, "code": code, **extra}).data)
    body.update({k: v for k, v in extra.items() if k not in body})
    return body


def problem_response(
    status: int,
    code: str,
    title: str,
    detail: str,
    *,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    return Response(
        problem_body(status, code, title, detail, **extra),
        status=status,
        headers=headers,
        content_type=PROBLEM_CONTENT_TYPE,
    )


def _flatten_errors(data: Any, prefix: str = "") -> dict[str, list[str]]:
    """DRF nests errors as dicts and lists; the contract wants ``{"field": [msg, ...]}``."""
    out: dict[str, list[str]] = {}
    if isinstance(data, dict):
        for key, value in data.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            if key == "non_field_errors":
                name = prefix or "non_field_errors"
            for field, messages in _flatten_errors(value, name).items():
                out.setdefault(field, []).extend(messages)
    elif isinstance(data, list):
        if all(not isinstance(item, dict | list) for item in data):
            out[prefix or "non_field_errors"] = [str(item) for item in data]
        else:
            for index, item in enumerate(data):
                for field, messages in _flatten_errors(item, f"{prefix}[{index}]").items():
                    out.setdefault(field, []).extend(messages)
    else:
        out[prefix or "non_field_errors"] = [str(data)]
    return out


DB_UNAVAILABLE = (
    503,
    "database_unavailable",
    "Database unavailable",
    "The database stayed locked or unreachable past its timeout; nothing was changed. "
    "Retry after the indicated delay.",
)


def database_unavailable_response() -> Response:
    """The 503 of DRF views; ``database_unavailable_json`` is its twin for plain views."""
    return problem_response(*DB_UNAVAILABLE, headers={"Retry-After": str(DB_RETRY_AFTER_SECONDS)})


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's ``EXCEPTION_HANDLER``."""
    request = context.get("request")
    if request is not None:
        # Views with their own renderers (the schema's YAML, the docs' HTML) and failed
        # content negotiation must still answer problems as JSON.
        request.accepted_renderer = JSONRenderer()
        request.accepted_media_type = PROBLEM_CONTENT_TYPE
    if isinstance(exc, DomainError):
        status = STATUS_BY_KIND[exc.kind]
        headers = {}
        if exc.retry_after is not None:
            headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
        return problem_response(
            status, exc.code, exc.title, exc.detail, headers=headers or None, **exc.extra
        )
    if isinstance(exc, Http404):
        return problem_response(404, "not_found", "Not found", "No such resource.")
    if isinstance(exc, OperationalError | InterfaceError):
        log.warning("database unavailable: %s", exc)
        return database_unavailable_response()
    if isinstance(exc, drf.APIException):
        headers: dict[str, str] = {}
        if isinstance(exc, drf.NotAuthenticated | drf.AuthenticationFailed):
            headers["WWW-Authenticate"] = 'Bearer realm="ether"'
            status = 401
        else:
            status = exc.status_code
        if getattr(exc, "wait", None):
            headers["Retry-After"] = str(int(exc.wait))
        code, title = next(
            ((c, t) for cls, c, t in DRF_CODES if isinstance(exc, cls)), ("error", "Error")
        )
        if isinstance(exc, drf.ValidationError):
            return problem_response(
                400,
                "validation_error",
                title,
                "The request is invalid.",
                errors=_flatten_errors(exc.detail),
            )
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        return problem_response(status, code, title, str(detail), headers=headers or None)
    if isinstance(exc, DatabaseError):
        # Anything else from the database is our bug, but it still gets a problem document.
        log.exception("database error")
    return None


def json_problem(status: int, code: str, title: str, detail: str) -> JsonResponse:
    return JsonResponse(
        problem_body(status, code, title, detail), status=status, content_type=PROBLEM_CONTENT_TYPE
    )


def database_unavailable_json() -> JsonResponse:
    response = json_problem(*DB_UNAVAILABLE)
    response["Retry-After"] = str(DB_RETRY_AFTER_SECONDS)
    return response


@csrf_exempt
def api_not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
    """The catch-all for paths under /api/ and /v1/ that match no route."""
    return json_problem(404, "not_found", "Not found", f"No route for {request.path}.")


def is_api_path(path: str) -> bool:
    return path.startswith(("/api/", "/v1/")) or path in {"/api", "/v1"}


# The problem of an answer that Django, not our code, decided on (a transport refusal, a
# bad Host, a debug page): by its status, so that every such answer on the API is one.
STATUS_PROBLEMS: dict[int, tuple[str, str, str]] = {
    400: ("bad_request", "Bad request", "The request could not be read."),
    403: ("forbidden", "Forbidden", "You may not do this."),
    404: ("not_found", "Not found", "No such resource."),
    405: ("method_not_allowed", "Method not allowed", "This method is not allowed here."),
    413: ("payload_too_large", "Payload too large", "The request is too large."),
    500: ("server_error", "Server error", "Something broke on our side."),
}


def status_problem(status: int) -> JsonResponse:
    default = ("error", "Error", "The request failed.") if status < 500 else STATUS_PROBLEMS[500]
    code, title, detail = STATUS_PROBLEMS.get(status, default)
    return json_problem(status, code, title, detail)


def handler404(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if not is_api_path(request.path):
        return defaults.page_not_found(request, exception or Http404())
    return json_problem(404, "not_found", "Not found", "No such resource.")


def handler400(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return status_problem(400)


def handler403(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return status_problem(403)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """``CSRF_FAILURE_VIEW``: a problem document under the API prefixes, Django's page
    elsewhere. (DRF's session authentication raises its own 403 for API views.)"""
    if not is_api_path(request.path):
        from django.views.csrf import csrf_failure as django_csrf_failure

        return django_csrf_failure(request, reason)
    return json_problem(403, "forbidden", "Forbidden", f"CSRF check failed: {reason}")


def handler500(request: HttpRequest) -> JsonResponse:
    return status_problem(500)
