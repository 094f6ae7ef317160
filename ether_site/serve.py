"""``python -m ether_site.serve``: daphne with an access log that never prints a secret.

Daphne's access log prints each HTTP request's full URI, query string included, and a
WebSocket client may put a token or ticket in ``?token=`` (docs/contract.md §5). A request for
``/api/realtime?token=…`` without an upgrade, or any URL a user pasted a secret into,
would otherwise write that secret to the log. Every option is daphne's own
(``python -m ether_site.serve --help``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from daphne.cli import CommandLineInterface
from daphne.server import Server

from ether_site.redaction import REDACTED, redact

__all__ = ["REDACTED", "EtherCommandLine", "RedactingServer", "main", "redact", "redacting"]

ActionLogger = Callable[[str, str, dict[str, Any]], None]


def redacting(logger: ActionLogger) -> ActionLogger:
    """Daphne's access log, redacted, for WebSocket connects and disconnects only: every
    HTTP request already gets its one line, with its request id, from the request log
    (ether_site.observability)."""

    def log(protocol: str, action: str, details: dict[str, Any]) -> None:
        if protocol == "http":
            return
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
    from api.metrics import forget_dead_processes

    # A process of this deployment that was killed left its open streams counted.
    forget_dead_processes()
    try:
        EtherCommandLine().run(sys.argv[1:] if argv is None else argv)
    finally:
        # This process's live gauges (open streams) leave the shared metrics directory.
        from api.metrics import process_exited

        process_exited()


if __name__ == "__main__":
    main()
