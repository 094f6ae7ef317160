"""Web links read the way a browser reads them, or refused.

A link a harness sends ends up as an ``<a href>`` on the task page, so the only parse
that matters is the browser's: the WHATWG URL standard, which ``ada_url`` implements. It
differs from ``urllib.parse`` exactly where attacks live: a backslash is a slash
(``https://evil.example\\@github.com/…`` goes to ``evil.example``), tabs and newlines
vanish, ``..`` and ``%2e%2e`` segments are resolved, ``0x7f.1`` is an IPv4 address.

Rather than teach the scope check every one of those rules, ``link_parse`` accepts only
links that every parser reads alike: ``http(s)://host[:port]/path`` in plain ASCII, with
no userinfo, query, fragment, percent-escape, backslash, whitespace or dot segment, whose
WHATWG parse changes nothing but the case of scheme and host and a default port. Anything
else is ambiguous, and ambiguity is refused, never repaired. The ``href`` returned is
ada's serialization: the string that is stored and that pages turn into links.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ada_url import URL

# What a link may look like before it is parsed: ASCII letters, digits and ``.-_~`` in
# the host and path, ``/`` between path segments, digits in the port. ``%``, ``\``, ``@``,
# ``?``, ``#``, whitespace, controls and non-ASCII (IDN look-alikes) cannot appear.
_PLAIN = re.compile(
    r"(?P<scheme>[A-Za-z]+)://(?P<host>[A-Za-z0-9.-]+)(?::(?P<port>[0-9]+))?"
    r"(?P<path>(?:/[A-Za-z0-9._~-]*)*)"
)
_SCHEMES = {"https": "443", "http": "80"}
_DOT_SEGMENTS = {".", ".."}


class UnsafeLink(ValueError):
    """The text is not a link every parser reads alike; ``str()`` says why."""


@dataclass(frozen=True)
class Link:
    href: str  # ada's serialization: lower-case scheme and host, no default port
    scheme: str  # "https" | "http"
    host: str  # lower-case, with ``:port`` when the port is not the scheme's default
    path: str  # as sent, at least "/"


def link_parse(raw: object) -> Link:
    """The link as a browser reads it; raises ``UnsafeLink`` for anything ambiguous."""
    if not isinstance(raw, str):
        raise UnsafeLink("it is not a string")
    for char, name in (("\\", "a backslash"), ("@", "userinfo (@)"), ("%", "a %-escape")):
        if char in raw:
            raise UnsafeLink(f"it contains {name}")
    if not raw.isascii() or any(c.isspace() or not c.isprintable() for c in raw):
        raise UnsafeLink("it contains whitespace, a control or a non-ASCII character")
    plain = _PLAIN.fullmatch(raw)
    if plain is None:
        raise UnsafeLink("it is not of the form http(s)://host/path (no query or fragment)")
    scheme = plain["scheme"].lower()
    if scheme not in _SCHEMES:
        raise UnsafeLink(f"its scheme {plain['scheme']!r} is not http or https")
    host, port, path = plain["host"].lower(), plain["port"], plain["path"]
    if host.startswith(".") or host.endswith(".") or ".." in host:
        raise UnsafeLink("its host has an empty label (a leading or trailing dot)")
    if _DOT_SEGMENTS & set(path.split("/")):
        raise UnsafeLink("its path has a . or .. segment")
    try:
        parsed = URL(raw)
    except ValueError:
        raise UnsafeLink("it is not a valid URL") from None
    # Whatever the browser would rewrite beyond case and a default port (an IPv4 written
    # in hex, a port of 0443, …) means the text and the link differ: refuse it.
    default = _SCHEMES[scheme]
    port_same = parsed.port == (port or "") or (parsed.port == "" and port == default)
    if (
        parsed.protocol != f"{scheme}:"
        or parsed.hostname != host
        or not port_same
        or parsed.username
        or parsed.password
        or parsed.pathname != (path or "/")
        or parsed.search
        or parsed.hash
    ):
        raise UnsafeLink("a browser would read it differently from how it is written")
    return Link(
        href=parsed.href,
        scheme=scheme,
        host=parsed.host,
        path=parsed.pathname,
    )


def safe_href(raw: object) -> str | None:
    """ada's href of a link that passes ``link_parse``, else None (never a link)."""
    try:
        return link_parse(raw).href
    except UnsafeLink:
        return None
