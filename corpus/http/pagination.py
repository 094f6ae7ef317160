"""Opaque cursor pagination: ``{"data": [...], "next_cursor": "…" | null}``."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from django.db.models import Model, QuerySet

from corpus.errors import ValidationFailed

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


def parse_limit(raw: str | None) -> int:
    if raw is None or raw == "":
        return DEFAULT_LIMIT
    try:
        value = int(raw)
    except ValueError:
        raise ValidationFailed({"limit": [f"Must be an integer from 1 to {MAX_LIMIT}."]})
    if not 1 <= value <= MAX_LIMIT:
        raise ValidationFailed({"limit": [f"Must be an integer from 1 to {MAX_LIMIT}."]})
    return value


def encode_cursor(position: int | str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"p": position}).encode()).decode().rstrip("=")


def decode_cursor(raw: str | None, kind: type = int) -> int | str | None:
    if not raw:
        return None
    try:
        padded = raw + "=" * (-len(raw) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode()))
        position = value["p"]
        if not isinstance(position, kind) or isinstance(position, bool):
            raise ValueError
        return position
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError):
        raise ValidationFailed({"cursor": ["Not a cursor this server issued."]})


def paginate(
    queryset: QuerySet[Any],
    params: Any,
    *,
    field: str,
    kind: type = int,
    descending: bool = False,
) -> tuple[list[Model], str | None]:
    """One page of ``queryset`` ordered by the unique ``field``, and the next cursor.

    The field must be public (a public id or a seq): integer primary keys never leave
    the server, not even inside a cursor.
    """
    limit = parse_limit(params.get("limit"))
    after = decode_cursor(params.get("cursor"), kind)
    if after is not None:
        lookup = f"{field}__lt" if descending else f"{field}__gt"
        queryset = queryset.filter(**{lookup: after})
    queryset = queryset.order_by(f"-{field}" if descending else field)
    rows = list(queryset[: limit + 1])
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor(getattr(rows[-1], field))
    return rows, next_cursor
