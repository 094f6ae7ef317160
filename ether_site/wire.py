"""Whole HTTP/1.1 requests read straight from a connection's bytes.

Twisted reads a request line by line into a Request, and daphne builds a WebRequest and
an application instance around it: most of what one process spends on a small request
(issue 18, docs/performance.md §8 "Ninth pass"). Two kinds of request are simple enough to
read here, with a few searches in C, before Twisted sees them: those refused while the
process sheds load (ether_site.loadshed.refuse_raw) and plain steps
(ether_site.serve.EtherHTTPChannel). ``whole_request`` reads one only when it is sure of
it: the head and the whole body are in hand, every field is well formed, the body's
length is one plain Content-Length. Anything else (a request not yet whole, a chunked
body, ``Expect``, an upgrade, HTTP/1.0, HEAD, a head Twisted would refuse as too large, a
field folded over two lines or with a NUL in it) is Twisted's, with every byte after it:
the two read a request's end from the same Content-Length, so they cannot disagree on
where a request ends.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from twisted.web.http_headers import _nameEncoder

# The fields that decide where a request ends or how it must be answered; each one at the
# start of a line and with no space before its colon, as RFC 9112 requires.
_DECIDING = re.compile(
    rb"\r\n(content-length|transfer-encoding|connection|expect|upgrade):[ \t]*([^\r\n]*)",
    re.IGNORECASE,
)
# A head's fields, each a token, a colon and a value with no NUL in it (what daphne checks
# before it answers 400): one match over the fields, or the request is Twisted's to read.
_WELL_FORMED = re.compile(rb"(?:\r\n[!#$%&'*+.^_`|~0-9A-Za-z-]+:[^\r\n\x00]*)*")
_FIELD = re.compile(rb"\r\n([^:]+):([^\r\n]*)")
# Twisted refuses a head (request line and fields) past this many bytes with 400.
MAX_HEAD = 16384


@dataclass(frozen=True, slots=True)
class Whole:
    """One whole request at ``start`` of some bytes."""

    method: bytes
    target: bytes
    fields_at: tuple[int, int]  # where its fields are: every one starts with CRLF
    body: bytes
    end: int  # where the request ends
    close: bool  # it asked for the connection to close after its answer


def whole_request(data: bytes, start: int = 0) -> Whole | None:
    """The request at ``start`` of ``data`` if it is whole and plain; else None."""
    end = data.find(b"\r\n\r\n", start, start + MAX_HEAD)
    if end < 0:
        return None
    line_end = data.find(b"\r\n", start, end + 2)
    parts = data[start:line_end].split(b" ")
    if len(parts) != 3 or parts[2] != b"HTTP/1.1" or parts[0] in (b"HEAD", b""):
        return None
    if _WELL_FORMED.fullmatch(data, line_end, end) is None:
        return None
    length, close = None, False
    for name, value in _DECIDING.findall(data, line_end, end):
        name = name.lower()
        if name == b"content-length" and length is None and value.strip().isdigit():
            length = int(value)
        elif name == b"connection":
            close = close or b"close" in value.lower()
        else:  # chunked, Expect, an upgrade, a second Content-Length: Twisted's
            return None
    body_start = end + 4
    body_end = body_start + (length or 0)
    if body_end > len(data):
        return None
    return Whole(
        method=parts[0],
        target=parts[1],
        fields_at=(line_end, end),
        body=data[body_start:body_end],
        end=body_end,
        close=close,
    )


def fields(data: bytes, whole: Whole) -> list[tuple[bytes, bytes]]:
    """Every field of ``whole``: the name lowercased, the value without the blanks
    around it, as Twisted reads them."""
    return [
        (name.lower(), value.strip(b" \t"))
        for name, value in _FIELD.findall(data, whole.fields_at[0], whole.fields_at[1])
    ]


def header_case(name: bytes) -> bytes:
    """A field name as Twisted writes it in an answer (``Content-Type``), so that what is
    written here reads the same; refuses a name that is not a token."""
    return _nameEncoder.encode(name)
