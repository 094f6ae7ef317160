"""The OpenAPI schema: our authentication classes (drf-spectacular extensions), the
problem responses every route shares (``EtherAutoSchema``) and the hooks after it."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse

from api.ratelimit import view_scopes
from api.views import ERROR_TEXT, ProblemSchema

WRITES = {"POST", "PUT", "PATCH"}

IDEMPOTENCY_HEADER = OpenApiParameter(
    "Idempotency-Key",
    str,
    OpenApiParameter.HEADER,
    required=False,
    description="Retry-safe POST: the same key and body get the stored answer (24 h).",
)

# Only on the 429 of a rate-limited method (``response=[429]``), never a request parameter.
RETRY_AFTER = OpenApiParameter("Retry-After", int, OpenApiParameter.HEADER, response=[429])


class AccessTokenScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.auth.AccessTokenAuthentication"
    name = "accessToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "Personal access token (eth_pat_…): manage.py create_access_token",
        }


class HarnessKeyScheme(OpenApiAuthenticationExtension):
    target_class = "tasks.harnesses.auth.HarnessKeyAuthentication"
    name = "harnessKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "Harness app key (eth_app_…): manage.py create_harness_app",
        }


class EtherAutoSchema(AutoSchema):
    """Adds the problem responses every route shares, so a view lists only its own.

    A view that authenticates answers 401 (credentials) and 503 (the credential lookup
    needs the database). A write (a method with a body) also answers 400, 405, 413 and
    415. An ``@idempotent`` handler (api/idempotency.py) takes the ``Idempotency-Key``
    header and answers 422 when a key comes back with another body. A method counted
    against a rate-limit scope (``throttle_scope``, ``throttle_scopes_by_method``;
    api/ratelimit.py) answers 429 with ``Retry-After``.
    What the view declares itself wins (``TaskEventsAPI``'s own 429)."""

    def shared_problems(self) -> list[int]:
        statuses: list[int] = []
        if self.view.authentication_classes:
            statuses += [401, 503]
        if self.method in WRITES:
            statuses += [400, 405, 413, 415]
        if self.idempotent():
            statuses.append(422)
        if self.rate_limited():
            statuses.append(429)
        return statuses

    def idempotent(self) -> bool:
        handler = getattr(self.view, self.method.lower(), None)
        return getattr(handler, "idempotent", False)

    def rate_limited(self) -> bool:
        return bool(view_scopes(self.view, self.method))

    def get_override_parameters(self) -> list[Any]:
        parameters = list(super().get_override_parameters())
        if self.idempotent():
            parameters.append(IDEMPOTENCY_HEADER)
        if self.rate_limited():
            parameters.append(RETRY_AFTER)
        return parameters

    def get_paginated_name(self, serializer_name: str) -> str:
        """A page of ``TaskOut`` is ``TaskPageOut`` (of ``DocumentRowOut``,
        ``DocumentPageOut``): the names the pages had when each was written by hand."""
        return serializer_name.removesuffix("Out").removesuffix("Row") + "PageOut"

    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        responses = super()._get_response_bodies(direction)
        for status in self.shared_problems():
            if str(status) not in responses:
                described = OpenApiResponse(ProblemSchema, description=ERROR_TEXT[status])
                responses[str(status)] = self._get_response_for_code(
                    described, str(status), direction=direction
                )
        return dict(sorted(responses.items()))


def problems_as_problem_json(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """Errors are served as ``application/problem+json`` (RFC 9457), but views describe
    them with ``ProblemSchema`` like any body, which drf-spectacular files under
    ``application/json``. Found by schemathesis: clients that validate the content type
    against the schema refused every error. Moves each such response to its real type."""
    problem_ref = "#/components/schemas/ProblemSchema"
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            if not isinstance(operation, dict):
                continue
            for response in operation.get("responses", {}).values():
                content = response.get("content", {})
                described = content.get("application/json", {}).get("schema", {})
                if described.get("$ref") == problem_ref:
                    content["application/problem+json"] = content.pop("application/json")
    return result
