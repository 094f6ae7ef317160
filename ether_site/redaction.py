"""Secrets out of anything we log: URLs in daphne's access log and in the request log.

Our secrets carry known prefixes (accounts.credentials), and the realtime URL may carry
one in ``?token=``; both are judged on the decoded text.
"""

from __future__ import annotations

import re
from urllib.parse import unquote_plus

from accounts.credentials import (
    ACCESS_TOKEN_PREFIX,
    HARNESS_KEY_PREFIX,
    SECRET_PARAMS,
    TICKET_PREFIX,
)

REDACTED = "[redacted]"
_SECRET_VALUE = re.compile(
    "(?:"
    + "|".join(re.escape(p) for p in (ACCESS_TOKEN_PREFIX, HARNESS_KEY_PREFIX, TICKET_PREFIX))
    + r")[A-Za-z0-9_\-]+"
)


def _secret_inside(raw: str) -> bool:
    return _SECRET_VALUE.search(unquote_plus(raw)) is not None


def _redact_query(query: str) -> str:
    pairs = []
    for pair in re.split(r"([&;])", query):
        name, eq, value = pair.partition("=")
        # Names and values are compared decoded: ``%74oken=`` is ``token=`` to a parser.
        if eq and (unquote_plus(name).lower() in SECRET_PARAMS or _secret_inside(value)):
            value = REDACTED
        pairs.append(name + eq + value)
    return "".join(pairs)


def redact(text: str) -> str:
    """The URI with credential query parameters and anything shaped like our secrets
    replaced, judged on the decoded text: a secret sent in the wrong place, or
    percent-encoded, is still kept out of the log."""
    path, question, rest = text.partition("?")
    query, hash_, fragment = rest.partition("#")
    segments = [REDACTED if _secret_inside(seg) else seg for seg in path.split("/")]
    text = "/".join(segments) + question + _redact_query(query) + hash_ + fragment
    return _SECRET_VALUE.sub(REDACTED, text)


def looks_secret(text: str) -> bool:
    """Whether ``text`` (decoded) holds anything shaped like one of our secrets."""
    return _secret_inside(text)
