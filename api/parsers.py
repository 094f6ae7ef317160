"""A JSON parser that refuses what the databases cannot store, as a 400 instead of a 500.

The stock parser lets through bodies that break later: nesting deep enough to exhaust
the recursion limit, numbers that overflow to infinity (not valid JSON to store), NUL
characters and unpaired surrogates (Postgres rejects both in text and jsonb), and
objects that name a key twice.
"""

from __future__ import annotations

import codecs
import json
from typing import Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

MAX_DEPTH = 64


def _finite(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"number {text[:20]} is out of range")
    return value


def _constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object naming a key twice is refused: parsers disagree on which value wins (the
    first, the last, an error), so a proxy or a signature check could read another body
    than ours."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key[:40]!r}")
        out[key] = value
    return out


def _bad_text(value: str) -> bool:
    return "\x00" in value or any("\ud800" <= ch <= "\udfff" for ch in value)


def check_value(value: Any, depth: int = 0) -> None:
    """Raises ValueError for nesting past MAX_DEPTH, NULs and unpaired surrogates."""
    if depth > MAX_DEPTH:
        raise ValueError(f"nesting deeper than {MAX_DEPTH} levels")
    if isinstance(value, str):
        if _bad_text(value):
            raise ValueError("strings may not contain NUL or unpaired surrogates")
    elif isinstance(value, dict):
        for key, item in value.items():
            if _bad_text(key):
                raise ValueError("keys may not contain NUL or unpaired surrogates")
            check_value(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            check_value(item, depth + 1)


def loads_strict(text: str) -> Any:
    """Parses JSON text the way every body and WebSocket frame is parsed; any refusal
    (bad JSON, too deep, a duplicate key, NaN, out-of-range numbers, NUL) is a ValueError."""
    try:
        data = json.loads(
            text,
            parse_float=_finite,
            parse_constant=_constant,
            object_pairs_hook=_unique_keys,
        )
    except RecursionError:
        # The C scanner recurses once per level and stops at the interpreter's limit.
        raise ValueError(f"nesting deeper than {MAX_DEPTH} levels")
    check_value(data)
    return data


class StrictJSONParser(JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        try:
            text = codecs.getreader(encoding)(stream).read()
            return loads_strict(text)
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}")
