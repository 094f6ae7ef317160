"""The bearer credential of a request; the credentials behind it are the domain apps' own
(``accounts.auth`` for people, ``tasks.harnesses.auth`` for harness apps)."""

from __future__ import annotations

from rest_framework import authentication, exceptions
from rest_framework.request import Request


def bearer_token(request: Request, *, bare_prefixes: tuple[str, ...] = ()) -> str | None:
    """The token of ``Authorization: Bearer <token>``, or None when there is no such header.

    ``bare_prefixes``: token formats also taken without the scheme (``Authorization:
    <token>``, the Everruns convention); anything else without ``Bearer`` is refused."""
    header = authentication.get_authorization_header(request).decode("latin-1")
    if not header:
        return None
    if bare_prefixes and header.startswith(bare_prefixes) and " " not in header:
        return header
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise exceptions.AuthenticationFailed("Use 'Authorization: Bearer <secret>'.")
    return token.strip()
