"""A plain step, read from its connection's bytes and answered without Twisted's or
daphne's request objects.

Why (issue 18, docs/performance.md §8 "Ninth pass"): at the rates one process takes steps,
its event loop spent more time in Twisted reading each request line by line into a
Request, in daphne's WebRequest, its application instance and queue, and in writing the
reply through both, than in the application itself (the step lane, ether_site.fastlane):
about two thirds of the loop's time in a profile at 1,400 steps/s. A step is a small,
whole POST on a connection the harness keeps open, the most frequent request by far.

So an ``EtherHTTPChannel`` between requests hands the bytes that start with a whole,
plain ``POST /api/harness/tasks/{id}/steps`` (ether_site.wire: one Content-Length,
HTTP/1.1, well-formed fields) to an ``Exchange``: it builds the ASGI scope daphne would
have built (the same path, headers without those with ``_``, client and scheme from the
proxy's fields when daphne is told to trust them), calls the same ASGI application with
it, and writes the application's answer as Twisted would have (field names in
Header-Case, values with no line breaks, ``Server``, chunked when no length is given).
The application cannot tell: the lane takes the step, or hands it to Django as before.
The connection reads nothing else until the answer is written, as with pipelined
requests in Twisted, and every other request, and anything ``wire`` is not sure of, goes
to Twisted as before.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import re
from typing import Any
from urllib.parse import unquote

from daphne.utils import parse_x_forwarded_for
from twisted.web.http import NO_BODY_CODES, RESPONSES
from twisted.web.http_headers import _sanitizeLinearWhitespace

from api.problems import STATUS_PROBLEMS, problem_body
from ether_site import loadshed, wire

log = logging.getLogger(__name__)

# The one route read here; its id part is what public ids are made of (no %-escapes).
STEP_TARGET = re.compile(rb"/api/harness/tasks/[A-Za-z0-9_-]+/steps")
_PREFIX = b"POST /api/harness/tasks/"


def plain_step(data: bytes) -> wire.Whole | None:
    """The step request at the start of ``data`` when it is whole and plain; else None."""
    if not data.startswith(_PREFIX):
        return None
    request = wire.whole_request(data)
    if request is None or STEP_TARGET.fullmatch(request.target) is None:
        return None
    return request


class Exchange:
    """One request of ``channel`` read from ``data`` and its answer.

    The channel keeps it while it runs (``channel.exchange``) and holds what the client
    sends meanwhile; when the answer is written (or the application fails) it is told to
    go on reading (``channel.exchange_done``)."""

    def __init__(self, channel: Any, data: bytes, request: wire.Whole) -> None:
        self.channel = channel
        self.request = request
        self.fields = wire.fields(data, request)
        self.head: bytes | None = None  # the answer's head, until it is written
        self.chunked = False
        self.done = False  # the answer is all written, or will never be
        self.lost: asyncio.Future[None] | None = None
        self._body_read = False
        self._since = 0.0
        self.task: asyncio.Future[None] | None = None  # the application, running

    def scope(self) -> dict[str, Any] | None:
        """What daphne's WebRequest.process hands the application; None when this
        request has something only daphne handles (``Daphne-Root-Path``)."""
        server = self.channel.factory.server
        headers = []
        for name, value in self.fields:
            if b"_" in name:
                continue  # as daphne: CVE-2015-0219
            if name == b"daphne-root-path":
                return None
            headers.append((name, value))
        transport = self.channel.transport
        peer, host = transport.getPeer(), transport.getHost()
        client: Any = None
        server_addr: Any = None
        if hasattr(peer, "host") and hasattr(peer, "port"):  # not on a unix socket
            client, server_addr = [str(peer.host), peer.port], [str(host.host), host.port]
        scheme = "https" if self.channel.isSecure() else "http"
        if server.proxy_forwarded_address_header:
            grouped: dict[bytes, list[bytes]] = {}
            for name, value in headers:
                grouped.setdefault(name, []).append(value)
            client, scheme = parse_x_forwarded_for(
                grouped,
                server.proxy_forwarded_address_header,
                server.proxy_forwarded_port_header,
                server.proxy_forwarded_proto_header,
                client,
                scheme,
            )
        path = self.request.target
        return {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "path": unquote(path.decode("ascii")),
            "raw_path": path,
            "root_path": server.root_path,
            "scheme": scheme,
            "query_string": b"",
            "headers": headers,
            "client": client,
            "server": server_addr,
        }

    def start(self, scope: dict[str, Any]) -> None:
        """Counted in flight as any API request, then the application runs."""
        self._since = loadshed.admit()
        self.task = asyncio.ensure_future(self._run(scope))

    async def _run(self, scope: dict[str, Any]) -> None:
        try:
            await self.channel.factory.server.application(
                scope=scope, receive=self.receive, send=self.send
            )
        except Exception:
            log.exception("the application failed on a step read from its bytes")
        if not self.done:
            # daphne answers an application that failed or returned without an answer
            # with 500; half an answer can only be ended by closing.
            if self.head is None or self.head:  # nothing of the answer written yet
                self._write(_error())
            self._finish(keep=False)

    async def receive(self) -> dict[str, Any]:
        if not self._body_read:
            self._body_read = True
            return {"type": "http.request", "body": self.request.body, "more_body": False}
        if self.lost is None:
            self.lost = asyncio.get_running_loop().create_future()
        await self.lost
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if self.done:
            return  # the client left: as daphne, the rest goes nowhere
        if kind == "http.response.start":
            if self.head is not None:
                raise ValueError("HTTP response has already been started")
            self.head = self._head(message["status"], message.get("headers", []))
        elif kind == "http.response.body":
            if self.head is None:
                raise ValueError("HTTP response has not yet been started")
            body, more = message.get("body", b""), message.get("more_body", False)
            out = [self.head] if self.head else []
            self.head = b""  # written
            if self.chunked:
                if body:
                    out += [b"%x\r\n" % len(body), body, b"\r\n"]
                if not more:
                    out.append(b"0\r\n\r\n")
            elif body:
                out.append(body)
            self._write(b"".join(out))
            if not more:
                self._finish(keep=not self.request.close)
        else:
            raise ValueError(f"unknown message type for an HTTP response: {kind}")

    def _head(self, status: int, headers: list[tuple[bytes, bytes]]) -> bytes:
        lines = [b"HTTP/1.1 %d %s\r\n" % (status, RESPONSES.get(status, b"Unknown Status"))]
        length = server = False
        for name, value in headers:
            encoded = wire.header_case(name)
            length = length or encoded == b"Content-Length"
            server = server or encoded == b"Server"
            lines.append(encoded + b": " + _sanitizeLinearWhitespace(value) + b"\r\n")
        name = self.channel.factory.server.server_name
        if name and not server:
            lines.append(b"Server: " + name.encode() + b"\r\n")
        if self.request.close:
            lines.append(b"Connection: close\r\n")
        self.chunked = not length and status not in NO_BODY_CODES and status >= 200
        if self.chunked:
            lines.append(b"Transfer-Encoding: chunked\r\n")
        return b"".join(lines) + b"\r\n"

    def _write(self, data: bytes) -> None:
        self.channel.send_now(data)

    def _finish(self, keep: bool) -> None:
        if self.done:
            return
        self.done = True
        loadshed.release(self._since)
        self.channel.exchange_done(self, keep)

    def gone(self) -> None:
        """The connection was lost: the application is told when it reads again, and
        nothing more is written."""
        if self.lost is not None and not self.lost.done():
            self.lost.set_result(None)
        if not self.done:
            self.done = True
            loadshed.release(self._since)


@functools.cache
def _error() -> bytes:
    body = json.dumps(problem_body(500, *STATUS_PROBLEMS[500])).encode()
    return (
        b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/problem+json\r\n"
        b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)
    )
