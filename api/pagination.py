"""Opaque cursor pagination: ``{"data": [...], "next_cursor": "…" | null}``."""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

from django.db.models import Model, QuerySet

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
