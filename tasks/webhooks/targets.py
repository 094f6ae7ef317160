"""Where a webhook may go: the URL rule and the SSRF guard (docs/webhooks.md, "Targets").

Only ``http`` and ``https`` URLs with a host and no credentials. Unless
``ETHER_WEBHOOK_ALLOW_PRIVATE`` is set, every address the host resolves to must be a
public one: loopback, private, link-local (the cloud metadata address 169.254.169.254),
multicast, reserved, unspecified and shared (CGNAT) addresses are refused, and so are
IPv4 addresses wrapped in IPv6. The check runs when the URL is set and again at every
send, and the sender connects to the very address it checked, so a DNS answer that
changes in between (rebinding) cannot lead it elsewhere.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
MAX_URL_LENGTH = 2000


class TargetRefused(Exception):
    """The URL is malformed, does not resolve, or reaches an address that is refused."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # as written in the URL (no brackets): the Host header and TLS name
    port: int
    path: str  # path and query, as sent in the request line
    addresses: tuple[str, ...]  # checked addresses, in the resolver's order


def refusal(ip: IPAddress) -> str | None:
    """Why this address may not be a webhook target, or None if it may."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is not None:
            reason = refusal(embedded)
            return f"{reason} (inside {ip})" if reason else None
    checks = (
        ("a loopback address", ip.is_loopback),
        ("the unspecified address", ip.is_unspecified),
        ("a link-local address", ip.is_link_local),
        ("a multicast address", ip.is_multicast),
        ("a private address", ip.is_private),
        ("a reserved address", ip.is_reserved),
        ("not globally routable", not ip.is_global),  # shared (CGNAT), documentation, …
    )
    for what, hit in checks:
        if hit:
            return f"{ip} is {what}"
    return None


def parse(url: str) -> tuple[str, str, int, str]:
    """Scheme, host, port and request path of an acceptable URL, or TargetRefused."""
    if not isinstance(url, str) or not url:
        raise TargetRefused("A URL is required.")
    if len(url) > MAX_URL_LENGTH:
        raise TargetRefused(f"At most {MAX_URL_LENGTH} characters.")
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        raise TargetRefused("The URL holds whitespace or control characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise TargetRefused(f"Not a URL: {exc}.") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise TargetRefused("Only http and https URLs.")
    if parts.username is not None or parts.password is not None:
        raise TargetRefused("No credentials in the URL: the signature authenticates us.")
    host = parts.hostname
    if not host:
        raise TargetRefused("The URL has no host.")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return scheme, host, port or (443 if scheme == "https" else 80), path


def _literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True


def resolve(host: str, port: int) -> tuple[IPAddress, ...]:
    try:
        # An address literal needs no resolver (and IPv6 ones work without IPv6 routes).
        return (ipaddress.ip_address(host.split("%", 1)[0]),)
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise TargetRefused(f"{host} does not resolve ({exc}).") from None
    found: list[IPAddress] = []
    for info in infos:
        ip = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if ip not in found:
            found.append(ip)
    if not found:
        raise TargetRefused(f"{host} does not resolve.")
    return tuple(found)


def check(url: str, *, allow_private: bool | None = None) -> Target:
    """The URL, resolved and checked: every address must pass, not just the first."""
    scheme, host, port, path = parse(url)
    addresses = resolve(host, port)
    if allow_private is None:
        allow_private = settings.ETHER_WEBHOOK_ALLOW_PRIVATE
    if not allow_private:
        for ip in addresses:
            reason = refusal(ip)
            if reason:
                where = "" if _literal(host) else f"{host} resolves to {ip}: "
                raise TargetRefused(
                    f"{where}{reason}; webhooks go to public addresses only "
                    "(ETHER_WEBHOOK_ALLOW_PRIVATE=1 allows others)."
                )
    return Target(
        scheme=scheme,
        host=host,
        port=port,
        path=path,
        addresses=tuple(str(ip) for ip in addresses),
    )
