"""Domain exceptions. They know nothing of HTTP: each names a ``kind`` of failure and a
stable ``code``; ``api.problems`` maps kinds to statuses in one place."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

Kind = Literal[
    "invalid",
    "unauthenticated",
    "forbidden",
    "not_found",
    "conflict",
    "precondition_failed",
    "too_large",
    "unprocessable",
    "unavailable",
]


class DomainError(Exception):
    kind: ClassVar[Kind] = "conflict"
    code: ClassVar[str] = "conflict"
    title: ClassVar[str] = "Conflict"

    def __init__(
        self,
        detail: str,
        *,
        extra: dict[str, Any] | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra or {}
        self.retry_after = retry_after


class ValidationFailed(DomainError):
    kind = "invalid"
    code = "validation_error"
    title = "Invalid request"

    def __init__(
        self, errors: dict[str, list[str]], detail: str = "The request is invalid."
    ) -> None:
        super().__init__(detail, extra={"errors": errors})
        self.errors = errors


class NotFound(DomainError):
    kind = "not_found"
    code = "not_found"
    title = "Not found"


class Forbidden(DomainError):
    kind = "forbidden"
    code = "forbidden"
    title = "Forbidden"


class IdempotencyKeyReused(DomainError):
    kind = "unprocessable"
    code = "idempotency_key_reused"
    title = "Idempotency key reused"


class RequestInFlight(DomainError):
    kind = "conflict"
    code = "request_in_flight"
    title = "Request in flight"


def describe(exc: DomainError) -> str:
    """One line for a terminal: the detail and, for validation errors, each field's messages."""
    errors = exc.extra.get("errors") or {}
    fields = "; ".join(f"{name}: {' '.join(msgs)}" for name, msgs in errors.items())
    return f"{exc.detail} {fields}".strip()


class PreconditionFailed(DomainError):
    kind = "precondition_failed"
    code = "precondition_failed"
    title = "Precondition failed"
