"""What every API view shares: documented errors, the Idempotency-Key header, the body."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers
from rest_framework.request import Request


class ProblemSchema(serializers.Serializer):
    type = serializers.CharField()
    title = serializers.CharField()
    status = serializers.IntegerField()
    detail = serializers.CharField()
    code = serializers.CharField()
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()), required=False
    )


ERROR_TEXT = {
    400: "Validation error, malformed JSON or bad query parameter",
    401: "Missing, unknown, revoked or expired credentials",
    403: "The credentials may not do this",
    404: "No such object in the caller's org (or a malformed id)",
    405: "Method not allowed",
    409: "Conflict with the current state",
    412: "If-Match does not match the current ETag",
    413: "Body over ETHER_MAX_BODY_BYTES, or markdown over ETHER_MAX_RENDER_BYTES",
    415: "Body is not application/json",
    422: "Idempotency-Key reused with another body, or artifact out of scope",
    429: "Rate limit reached (ETHER_RATE_*); see Retry-After",
    503: "Database locked or unreachable past its timeout; see Retry-After",
}


def problems(*statuses: int, **described: str) -> dict[int, OpenApiResponse]:
    """OpenAPI responses for the problem documents a route answers besides the ones
    every route shares, which ``api.schema.EtherAutoSchema`` adds (401 and 503; 400,
    405, 413 and 415 on writes; 422 on ``@idempotent`` handlers; 429 where a rate limit
    applies)."""
    out: dict[int, OpenApiResponse] = {}
    for status in statuses:
        text = described.get(f"s{status}", ERROR_TEXT.get(status, "Error"))
        out[status] = OpenApiResponse(ProblemSchema, description=text)
    return out


# What a POST on an object answers besides the shared write problems (and the 422 of
# every ``@idempotent`` handler): no such object, a conflict with the current state.
POST_PROBLEMS = (404, 409)


def base_url(request: Request) -> str:
    """Scheme and host as the client reached us (honours the proxy settings)."""
    return request.build_absolute_uri("/").rstrip("/")


def body(request: Request) -> Any:
    """The parsed JSON body; an empty body is an empty object."""
    data = request.data
    return {} if data is None else data
