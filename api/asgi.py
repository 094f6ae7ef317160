"""Django's ASGI handler, with its own refusals on API paths as problem documents.

``ASGIHandler.create_request`` answers two requests before any middleware runs: one it
cannot decode (a query string that is not UTF-8: a bare ``400`` HTML page) and one over
the upload limit (a plain-text ``413``). On /api/ and /v1/ those become the same problem
documents as every other refusal; product pages keep Django's answers.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from django.core.handlers.asgi import ASGIHandler
from django.http import HttpRequest, HttpResponse

from api.problems import is_api_path, status_problem

log = logging.getLogger("ether.request")


class ProblemASGIHandler(ASGIHandler):
    def create_request(
        self, scope: dict[str, Any], body_file: Any
    ) -> tuple[HttpRequest | None, HttpResponse | None]:
        request, refusal = super().create_request(scope, body_file)
        if refusal is None:
            return request, refusal
        if is_api_path(str(scope.get("path", ""))):
            refusal = status_problem(refusal.status_code)
        # No middleware runs for it, so its request-log line and id are given here (no
        # path: it may be what could not be decoded, and this layer cannot redact it).
        rid = uuid.uuid4().hex
        refusal["X-Request-ID"] = rid
        method = str(scope.get("method", ""))[:16]
        log.info(
            "%s (refused before routing) %s",
            method,
            refusal.status_code,
            extra={"request_id": rid, "route": "unrouted", "status": refusal.status_code},
        )
        return None, refusal
