"""Numbers read from query strings and paths: ASCII digits only.

Python's ``int()`` reads far more than a client should be able to send as a number:
fullwidth digits (U+FF11 U+FF10), Arabic-Indic ones (U+0661 U+0660), ``" 10"``,
``"+10"``, ``"1_0"``. Each of those would reach a query as 10 while a cache, a log or a
proxy in front sees another string, so a number here is ``[0-9]+`` and nothing else.
Every reader of a numeric parameter goes through ``ascii_int`` or ``bounded_int``
(``api.query.QueryIntegerField``).
"""

from __future__ import annotations

import re

from api.errors import ValidationFailed

# A str pattern's [0-9] is exactly the ten ASCII digits (unlike \d or str.isdigit()).
_DIGITS = re.compile(r"[0-9]+")


def is_ascii_int(raw: str) -> bool:
    return _DIGITS.fullmatch(raw) is not None


def ascii_int(
    raw: str | None, *, name: str, minimum: int, maximum: int, message: str
) -> int | None:
    """The parameter as an integer, None when absent or empty (docs/api.md: an empty
    parameter counts as absent); ``400 validation_error`` under ``name`` otherwise."""
    if raw is None or raw == "":
        return None
    value = bounded_int(raw, minimum=minimum, maximum=maximum)
    if value is None:
        raise ValidationFailed({name: [message]})
    return value


def bounded_int(raw: str, *, minimum: int, maximum: int) -> int | None:
    """``raw`` as an integer within [minimum, maximum]; None when it is not one."""
    # The length check keeps a megabyte of digits from becoming a huge int first.
    if len(raw) > len(str(maximum)) + 2 or not is_ascii_int(raw):
        return None
    value = int(raw)
    return value if minimum <= value <= maximum else None
