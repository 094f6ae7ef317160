"""``python -m ether_site.serve``: daphne with an access log that never prints a secret.

Daphne's access log prints each HTTP request's full URI, query string included, and a
WebSocket client may put a token or ticket in ``?token=`` (docs/contract.md §5). A request for
``/api/realtime?token=…`` without an upgrade, or any URL a user pasted a secret into,
would otherwise write that secret to the log. Every option is daphne's own
(``python -m ether_site.serve --help``).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote_plus

from daphne.cli import CommandLineInterface
from daphne.server import Server

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


ActionLogger = Callable[[str, str, dict[str, Any]], None]


def redacting(logger: ActionLogger) -> ActionLogger:
    def log(protocol: str, action: str, details: dict[str, Any]) -> None:
        if isinstance(details.get("path"), str):
            details = {**details, "path": redact(details["path"])}
        logger(protocol, action, details)

    return log


class RedactingServer(Server):
    def __init__(
        self, *args: Any, action_logger: ActionLogger | None = None, **kwargs: Any
    ) -> None:
        wrapped = redacting(action_logger) if action_logger is not None else None
        super().__init__(*args, action_logger=wrapped, **kwargs)


class EtherCommandLine(CommandLineInterface):
    server_class = RedactingServer


def main(argv: list[str] | None = None) -> None:
    EtherCommandLine().run(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    main()
