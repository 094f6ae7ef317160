"""``python -m ether_site.serve``: daphne with an access log that never prints a secret.

Daphne's access log prints each HTTP request's full URI, query string included, and a
WebSocket client may put a token or ticket in ``?token=`` (docs/contract.md §5). A request for
``/api/realtime?token=…`` without an upgrade, or any URL a user pasted a secret into,
would otherwise write that secret to the log. Here that log keeps only WebSocket
connects and disconnects, redacted and through ``logging`` (JSON with
``ETHER_LOG_FORMAT=json``); HTTP requests get their line from the request log. Every
option is daphne's own (``python -m ether_site.serve --help``).
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import sys
from collections.abc import Callable
from typing import Any

from daphne.cli import CommandLineInterface
from daphne.http_protocol import HTTPFactory, WebRequest
from daphne.server import Server
from twisted.internet.interfaces import IAddress
from twisted.internet.protocol import Protocol
from twisted.web.http import HTTPChannel, _GenericHTTPChannelProtocol

from ether_site.redaction import REDACTED, redact

__all__ = [
    "REDACTED",
    "EtherCommandLine",
    "EtherHTTPChannel",
    "EtherHTTPFactory",
    "EtherWebRequest",
    "RedactingServer",
    "freeze_startup_objects",
    "main",
    "redact",
    "websocket_log",
    "with_backlog",
]

ActionLogger = Callable[[str, str, dict[str, Any]], None]


WS_ACTIONS = {
    "connecting": "WSCONNECTING",
    "connected": "WSCONNECT",
    "rejected": "WSREJECT",
    "disconnected": "WSDISCONNECT",
}
ws_log = logging.getLogger("ether.websocket")


def websocket_log(protocol: str, action: str, details: dict[str, Any]) -> None:
    """Daphne's access log, for WebSocket connects and disconnects only and through
    logging (so ``ETHER_LOG_FORMAT=json`` makes them JSON too), the URL redacted. Every
    HTTP request already gets its one line, with its request id, from the request log
    (ether_site.observability)."""
    if protocol != "websocket" or action not in WS_ACTIONS:
        return
    path = redact(str(details.get("path", "")))
    client = details.get("client")
    ws_log.info(
        "%s %s",
        WS_ACTIONS[action],
        path,
        extra={
            "action": WS_ACTIONS[action],
            "path": path,
            "client": f"{client[0]}:{client[1]}" if isinstance(client, list | tuple) else client,
        },
    )


# How many connections the kernel holds for daphne before it accepts them. Twisted's
# default is 50: when more arrive at once (a burst of harness requests each on a new
# connection, a reconnect storm of browsers) the kernel drops the extra SYNs and each
# client waits for its retransmit, 1 s and then 3 s. The steps benchmark measured
# 53,537 such drops and p99s of 1.0-1.4 s that were that wait, on the bare baseline as
# much as on Ether (issue 18). The kernel caps it at net.core.somaxconn (4096 here).
LISTEN_BACKLOG = 1024


def listen_backlog() -> int:
    value = os.environ.get("ETHER_LISTEN_BACKLOG", "").strip()
    if not value:
        return LISTEN_BACKLOG
    if not value.isdigit() or int(value) < 1:
        raise SystemExit(f"ETHER_LISTEN_BACKLOG={value!r} is not a positive whole number")
    return int(value)


def with_backlog(endpoint: str, backlog: int) -> str:
    """A TCP endpoint description (daphne's ``-b``/``-p`` or an ``-e tcp:…``) with a listen
    backlog, unless it names its own; other endpoints (unix, fd) unchanged."""
    if not endpoint.startswith("tcp:") or ":backlog=" in endpoint:
        return endpoint
    return f"{endpoint}:backlog={backlog}"


# Set when serving starts (both need Django set up, and are not imported before):
# ether_site.loadshed, which refuses requests while the process sheds load and counts
# those it lets in; ether_site.direct when plain steps are read from their bytes
# (ETHER_DIRECT_STEPS).
_loadshed: Any = None
_direct: Any = None


def freeze_startup_objects() -> None:
    """Moves every object alive now (the application loaded: Django, its settings, models,
    URLs, every imported module) out of the garbage collector's sight, for good.

    A full collection walks every tracked object, and a served Django process holds some
    hundreds of thousands that live as long as it does. Under load the requests in flight
    promote enough objects for a full collection about once a second, and each stopped the
    process for ~100 ms: measured serving steps at 1,700/s, that pause was the p95 and p99
    (175 / 200 ms against a p50 of 17 ms; issue 18). Frozen, those objects are never
    walked again; what a request allocates is collected as before. Garbage is collected
    first, so nothing dead is kept."""
    gc.collect()
    gc.freeze()


class EtherWebRequest(WebRequest):
    """daphne's request, without Twisted parsing the body of a form POST.

    Twisted reads every POST's ``Content-Type`` through the ``email`` package and parses
    a ``multipart/form-data`` or urlencoded body into ``request.args``, on the event loop,
    before daphne sees the request. daphne never reads ``args``: it hands the raw body to
    the application, which parses it (Django, within ``ETHER_MAX_BODY_BYTES``). The header
    parse alone was 18% of the event loop's time serving steps at 1,400/s (issue 18); a
    hostile 1.1 MB multipart body of 20,000 parts held the loop, and every connection of the
    process, for 0.26 s, before any size limit of ours; and a malformed one got Twisted's
    bare HTML 400 instead of our problem document.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._parsePOSTFormSubmission = False

    def process(self) -> Any:
        # Past what the event loop can read, an API request is refused here, before
        # daphne builds an application for it (ether_site.loadshed).
        if _loadshed is not None and _loadshed.shed(self):
            return None
        return super().process()

    def finish(self) -> Any:
        if _loadshed is not None:
            _loadshed.done(self)
        return super().finish()

    def connectionLost(self, reason: Any) -> None:
        if _loadshed is not None:
            _loadshed.done(self)
        super().connectionLost(reason)


class EtherHTTPChannel(HTTPChannel):
    """Twisted's HTTP/1.1 connection, which reads two kinds of request from their bytes
    without making Twisted requests of them: while the process sheds load, the sheddable
    requests at the start of what it reads are answered 503 (ether_site.loadshed,
    "Refusing as the bytes arrive"); otherwise a plain step is handed to the application
    as daphne would (ether_site.direct)."""

    # A request read from its bytes and not yet answered (ether_site.direct), and what
    # the client sent after it meanwhile, read once the answer is written.
    exchange: Any = None
    _held = b""

    def dataReceived(self, data: bytes) -> None:
        if self.exchange is not None:
            self._held += data
            if len(self._held) > self._optimisticEagerReadSize:
                # As Twisted does with pipelined requests: the client waits for now.
                self._networkProducer.pauseProducing()
            return
        if not self._between_requests():
            super().dataReceived(data)
            return
        if _loadshed is not None and _loadshed.MONITOR.shedding():
            taken, answers, close = _loadshed.refuse_raw(data)
            if taken:
                _loadshed.MONITOR.refuse(len(answers))
                self.resetTimeout()
                self.send_now(b"".join(answers))
                if close:
                    # As Twisted does after a response to "Connection: close": the rest
                    # is not read.
                    self.persistent = False
                    self.transport.loseConnection()  # type: ignore[union-attr]
                    return
                data = data[taken:]
                if not data:
                    return
        elif _direct is not None and (request := _direct.plain_step(data)) is not None:
            exchange = _direct.Exchange(self, data, request)
            scope = exchange.scope()
            if scope is not None:
                self.exchange, self._held = exchange, data[request.end :]
                self._saved_timeout = self.setTimeout(None)  # as Twisted, while answering
                exchange.start(scope)
                return
        super().dataReceived(data)

    def exchange_done(self, exchange: Any, keep: bool) -> None:
        """``exchange`` has written its answer: go on reading, or close."""
        if exchange is not self.exchange:
            return
        self.exchange = None
        if not keep:
            self.persistent = False
            self.transport.loseConnection()  # type: ignore[union-attr]
            return
        self.setTimeout(self._saved_timeout)
        if not self._waitingForTransport:  # as Twisted: not while the client reads nothing
            self._networkProducer.resumeProducing()
        held, self._held = self._held, b""
        if held:
            self.dataReceived(held)

    def connectionLost(self, reason: Any) -> None:
        if self.exchange is not None:
            self.exchange.gone()
            self.exchange = None
        super().connectionLost(reason)

    def send_now(self, data: bytes) -> None:
        """``transport.write(data)``, sent at once when nothing waits before it.

        Twisted's write only buffers: the bytes leave on the loop's next turn, after two
        changes to the poller's interest in the socket, each a system call. A refusal's few
        hundred bytes to a socket with nothing queued fit its send buffer; sending them
        now skips both calls and the turn. What the socket does not take, or any error,
        goes through Twisted's write as before (plain TCP only: TLS has its own)."""
        transport: Any = self.transport
        if (
            getattr(transport, "TLS", True) is False
            and transport.connected
            and not transport.disconnecting
            and not transport._tempDataLen
            and transport.offset == len(transport.dataBuffer)
        ):
            # Would block, or gone: Twisted's write finds out which.
            with contextlib.suppress(OSError):
                data = data[transport.socket.send(data) :]
        if data:
            transport.write(data)

    def _between_requests(self) -> bool:
        """No request of this connection is being read, handled or answered, and Twisted
        holds none of its bytes: the next byte starts a request."""
        return (
            not self.requests
            and self.line_mode
            and not self._buffer
            and not self._busyReceiving
            and self.persistent
            and not self._waitingForTransport  # its client is not reading our answers
            and self._HTTPChannel__first_line == 1  # type: ignore[attr-defined]
        )


def _ether_channel(factory: HTTPFactory) -> _GenericHTTPChannelProtocol:
    # Twisted's own factory function, with our channel: _GenericHTTPChannelProtocol picks
    # HTTP/2 or HTTP/1.1 for a connection, and only the latter reads through the channel.
    return _GenericHTTPChannelProtocol(EtherHTTPChannel())


class EtherHTTPFactory(HTTPFactory):
    """daphne's HTTP factory, its connections building ``EtherWebRequest``s on
    ``EtherHTTPChannel``s."""

    protocol = _ether_channel  # type: ignore[assignment]

    def buildProtocol(self, addr: IAddress) -> Protocol | None:
        protocol = super().buildProtocol(addr)
        if protocol is not None:
            protocol.requestFactory = EtherWebRequest  # type: ignore[attr-defined]
        return protocol

    def log(self, request: Any) -> None:
        """Nothing: Twisted's own access log. With no log file set it formats a combined
        log line per request and hands it to Twisted's legacy logging, which nothing
        here reads: 3-6% of the event loop serving steps (issue 18). The request log
        (ether_site.observability) writes each request's line."""


class RedactingServer(Server):
    def __init__(
        self,
        *args: Any,
        action_logger: ActionLogger | None = None,
        endpoints: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        # Daphne passes its access-log writer when verbosity >= 1 or --access-log is set.
        wrapped = websocket_log if action_logger is not None else None
        backlog = listen_backlog()
        endpoints = [with_backlog(e, backlog) for e in endpoints or []]
        super().__init__(*args, action_logger=wrapped, endpoints=endpoints, **kwargs)

    def run(self) -> None:
        freeze_startup_objects()
        global _loadshed, _direct
        from django.conf import settings
        from twisted.internet import reactor

        from ether_site import direct, loadshed, walcheckpoint

        _loadshed = loadshed
        if settings.ETHER_DIRECT_STEPS and settings.ETHER_STEP_FAST_LANE:
            _direct = direct
        reactor.callWhenRunning(loadshed.start)  # type: ignore[attr-defined]
        walcheckpoint.start()  # SQLite's checkpoints in a thread, not in a step's commit
        super().run()

    # daphne's Server.run() builds its HTTPFactory and listens with it in one method;
    # taking the factory as it is assigned puts ours in without copying run().
    @property
    def http_factory(self) -> HTTPFactory:
        return self._http_factory

    @http_factory.setter
    def http_factory(self, factory: HTTPFactory) -> None:
        if not isinstance(factory, EtherHTTPFactory):
            factory = EtherHTTPFactory(factory.server)
        self._http_factory = factory


# Daphne refuses a WebSocket (403) whose application has not accepted it within 5 s. In
# a reconnect storm (a deploy, 1,000 browsers at once) one process takes longer than that
# to authenticate every handshake, and a refused client only comes back: the bench
# refused 326-421 of 1,000 (issue 18). 30 s lets the storm in; --websocket_connect_timeout
# still sets it.
WEBSOCKET_CONNECT_TIMEOUT = 30


class EtherCommandLine(CommandLineInterface):
    server_class = RedactingServer

    def __init__(self) -> None:
        super().__init__()
        self.parser.set_defaults(websocket_connect_timeout=WEBSOCKET_CONNECT_TIMEOUT)


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
