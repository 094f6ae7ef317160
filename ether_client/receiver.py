"""A small webhook receiver for a harness on one machine: a threaded HTTP server that
checks each delivery's signature and wakes whoever waits for its type.

Production harnesses mount ``verify_webhook`` in their own web framework; this is for
demos and small setups (``demo_harness --webhook``). It binds 127.0.0.1 by default.
"""

from __future__ import annotations

import threading
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ether_client.webhooks import WebhookVerificationError, verify_webhook

MAX_BODY = 1024 * 1024


class WebhookReceiver:
    """``with WebhookReceiver(secret) as hooks: hooks.url … hooks.wait("task.ready", 30)``.

    ``secret`` may be set after start (``receiver.secret = …``): the URL must exist before
    the server can be told it, and the secret comes after. Until then every delivery is
    refused (401), so nothing unsigned is ever believed."""

    def __init__(self, secret: str | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        self.secret = secret
        self.received: deque[dict[str, Any]] = deque(maxlen=1000)
        self.refused = 0
        self._arrived = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_BODY:
                    self.send_response(413)
                    self.end_headers()
                    return
                body = self.rfile.read(length)
                status = receiver._take(body, {k: v for k, v in self.headers.items()})
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet: the demo prints what matters

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/webhooks/ether"

    def _take(self, body: bytes, headers: dict[str, str]) -> int:
        if not self.secret:
            self.refused += 1
            return 401
        try:
            payload = verify_webhook(self.secret, body, headers)
        except WebhookVerificationError:
            self.refused += 1
            return 401
        with self._arrived:
            self.received.append(payload)
            self._arrived.notify_all()
        return 204

    def wait(self, kind: str, timeout: float) -> dict[str, Any] | None:
        """The next delivery of ``kind`` received from now on (None after ``timeout``)."""
        with self._arrived:
            seen = len(self.received)
            found: list[dict[str, Any]] = []

            def arrived() -> bool:
                found.extend(p for p in list(self.received)[seen:] if p["type"] == kind)
                return bool(found)

            self._arrived.wait_for(arrived, timeout=timeout)
            return found[0] if found else None

    def start(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
