"""Absolute URLs the server hands out (docs/contract.md §6, "Public URL").

Every absolute URL in a response or a message (bundle callbacks, ``self_url``,
``view_url``, the realtime config, webhook payloads) is built by ``absolute_url``. With
``ETHER_PUBLIC_URL`` set, it is that origin and never the request's ``Host``: a client
that sends ``Host: evil.example`` must not be able to point a harness's callbacks at
another server. Without it, the origin is the request's (the local default, where the
server is reached as ``127.0.0.1:8080``); a caller with no request (a sender process)
gets ``LOCAL_ORIGIN``.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest

# The origin `make run` serves, for URLs built outside a request with no ETHER_PUBLIC_URL.
LOCAL_ORIGIN = "http://127.0.0.1:8080"


def public_origin(request: HttpRequest | None = None) -> str:
    """``ETHER_PUBLIC_URL``, else the origin the request reached us at, else LOCAL_ORIGIN."""
    configured = settings.ETHER_PUBLIC_URL
    if configured:
        return configured
    if request is not None:
        return request.build_absolute_uri("/").rstrip("/")
    return LOCAL_ORIGIN


def absolute_url(path: str, request: HttpRequest | None = None) -> str:
    """The absolute URL of one of our paths (``reverse(...)`` or ``/api/...``)."""
    if not path.startswith("/"):
        raise ValueError(f"absolute_url takes a path from the root, not {path!r}")
    return public_origin(request) + path


def websocket_origin(request: HttpRequest | None = None) -> str:
    """The same origin for WebSockets: http → ws, https → wss."""
    return "ws" + public_origin(request).removeprefix("http")
