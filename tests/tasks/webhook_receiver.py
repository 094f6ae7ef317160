"""A real HTTP receiver for webhook tests: ``http.server`` on 127.0.0.1 in a thread.

It records every request (headers and exact body bytes) and answers each with what the
test asks for: a status (``fail`` decides per request), or it holds the request open
until ``release`` (to kill a sender mid-send). ``acked`` lists the requests answered 2xx.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    status: int = 0

    @property
    def id(self) -> str:
        return self.headers["webhook-id"]

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.body)

    def verify(self, secret: str) -> dict[str, Any]:
        """The body, if its signature verifies with ``secret`` (standardwebhooks)."""
        return Webhook(secret).verify(self.body, self.headers)


@dataclass
class Receiver:
    port: int = 0
    requests: list[Received] = field(default_factory=list)
    # Decides the status of each request (after it is recorded); default 204.
    fail: Callable[[Received], int | None] = lambda r: None
    hold_at: int | None = None  # the index of the request to hold open
    held: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    release_status: int = 503
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/ether"

    @property
    def acked(self) -> list[Received]:
        with self.lock:
            return [r for r in self.requests if 200 <= r.status < 300]

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                item = Received({k.lower(): v for k, v in self.headers.items()}, b"")
                item.body = self.rfile.read(length)
                with receiver.lock:
                    receiver.requests.append(item)
                    hold = receiver.hold_at == len(receiver.requests) - 1
                if hold:
                    receiver.held.set()
                    receiver.release.wait(60)
                    status = receiver.release_status
                else:
                    status = receiver.fail(item) or 204
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    status = 0  # the sender is gone: nobody got this answer
                with receiver.lock:
                    item.status = status

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
