"""Opaque cursor pagination: ``{"data": [...], "next_cursor": "…" | null}``."""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

from django.db.models import Model, QuerySet
from django.utils.functional import cached_property
from rest_framework.pagination import BasePagination
from rest_framework.request import Request
from rest_framework.response import Response

from api.errors import ValidationFailed
from api.params import ascii_int

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
# Positions are public values: a seq or version (a positive BIGINT), or a public id
# (``task_…``) or slug (a harness app's ``app_id``). Nothing else is ever issued.
MAX_POSITION = 2**63 - 1
STR_POSITION = re.compile(r"[A-Za-z0-9_-]{1,100}")
MAX_CURSOR_CHARS = 200
NOT_ISSUED = {"cursor": ["Not a cursor this server issued."]}


def parse_limit(raw: str | None) -> int:
    limit = ascii_int(
        raw,
        name="limit",
        minimum=1,
        maximum=MAX_LIMIT,
        message=f"Must be an integer from 1 to {MAX_LIMIT}.",
    )
    return DEFAULT_LIMIT if limit is None else limit


def encode_cursor(position: int | str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"p": position}).encode()).decode().rstrip("=")


def decode_cursor(raw: str | None, kind: type = int) -> int | str | None:
    """The position in a cursor, or ``400 validation_error`` for anything this server
    would not have issued: not base64, not ``{"p": …}``, a position of another type
    (``{"p": 1e30}``, ``true``), out of range, or any other spelling of a valid one
    (padding, spaces, extra keys). The last rule is checked by encoding again: a cursor
    is valid only if it is, byte for byte, the one ``encode_cursor`` makes of it."""
    if not raw:
        return None
    if len(raw) > MAX_CURSOR_CHARS:
        raise ValidationFailed(NOT_ISSUED)
    try:
        padded = raw + "=" * (-len(raw) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError, RecursionError):
        raise ValidationFailed(NOT_ISSUED) from None
    if not isinstance(value, dict) or set(value) != {"p"}:
        raise ValidationFailed(NOT_ISSUED)
    position = value["p"]
    if kind is int:
        valid = type(position) is int and 1 <= position <= MAX_POSITION
    else:
        valid = type(position) is str and STR_POSITION.fullmatch(position) is not None
    if not valid or encode_cursor(position) != raw:
        raise ValidationFailed(NOT_ISSUED)
    return position


class CursorPagination(BasePagination):
    """One page of a list view, ordered by a unique public field, and the next cursor:
    ``{"data": [...], "next_cursor": "…" | null}``.

    The view names the order (``cursor_ordering = "-public_id"``, ``"seq"``) and the
    type of its positions (``cursor_kind``, ``int`` unless ``str``). The field must be
    public (a public id or a seq): integer primary keys never leave the server, not even
    inside a cursor."""

    next_cursor: str | None = None

    def paginate_queryset(
        self, queryset: QuerySet[Any], request: Request, view: Any = None
    ) -> list[Model]:
        ordering = view.cursor_ordering
        field = ordering.removeprefix("-")
        descending = ordering.startswith("-")
        params = request.query_params
        limit = parse_limit(params.get("limit"))
        after = decode_cursor(params.get("cursor"), getattr(view, "cursor_kind", int))
        if after is not None:
            lookup = f"{field}__lt" if descending else f"{field}__gt"
            queryset = queryset.filter(**{lookup: after})
        rows = list(queryset.order_by(ordering)[: limit + 1])
        self.next_cursor = None
        if len(rows) > limit:
            rows = rows[:limit]
            self.next_cursor = encode_cursor(getattr(rows[-1], field))
        return rows

    def get_paginated_response(self, data: list[Any]) -> Response:
        return Response({"data": data, "next_cursor": self.next_cursor})

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": "object",
            "properties": {
                "data": schema,
                "next_cursor": {"type": "string", "nullable": True},
            },
            "required": ["data", "next_cursor"],
        }

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        return [
            {"in": "query", "name": "limit", "schema": {"type": "integer"}},
            {"in": "query", "name": "cursor", "schema": {"type": "string"}},
        ]


# What DRF's GenericAPIView gives a list view, for our plain APIViews: pagination_class,
# self.paginator, paginate_queryset and get_paginated_response (drf-spectacular documents
# the page and its parameters from pagination_class when the view's 200 is a many=True
# serializer). A comment, not a docstring: the schema takes a view's description from
# the first docstring in its class's MRO, which must stay the view's own.
class CursorPaged:
    pagination_class = CursorPagination
    cursor_ordering: str
    cursor_kind: type = int
    request: Request

    @cached_property
    def paginator(self) -> CursorPagination:
        return self.pagination_class()

    def paginate_queryset(self, queryset: QuerySet[Any]) -> list[Model]:
        return self.paginator.paginate_queryset(queryset, self.request, view=self)

    def get_paginated_response(self, data: list[Any]) -> Response:
        return self.paginator.get_paginated_response(data)
