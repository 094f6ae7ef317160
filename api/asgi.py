"""Django's ASGI handler, with its own refusals on API paths as problem documents.

``ASGIHandler.create_request`` answers two requests before any middleware runs: one it
cannot decode (a query string that is not UTF-8: a bare ``400`` HTML page) and one over
the upload limit (a plain-text ``413``). On /api/ and /v1/ those become the same problem
documents as every other refusal; product pages keep Django's answers.
"""

from __future__ import annotations

from typing import Any

from django.core.handlers.asgi import ASGIHandler
from django.http import HttpRequest, HttpResponse

from api.problems import is_api_path, status_problem


class ProblemASGIHandler(ASGIHandler):
    def create_request(
        self, scope: dict[str, Any], body_file: Any
    ) -> tuple[HttpRequest | None, HttpResponse | None]:
        request, refusal = super().create_request(scope, body_file)
        if refusal is not None and is_api_path(str(scope.get("path", ""))):
            return None, status_problem(refusal.status_code)
        return request, refusal
