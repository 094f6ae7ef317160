"""Small typed readers of the environment, for ether_site/settings.py: each answers the
default when the variable is unset or empty, and refuses a malformed value with
ImproperlyConfigured naming the variable."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean (use 1/0, true/false)")


def env_int(name: str, default: int, *, minimum: int = 0) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not an integer") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name}={value} must be at least {minimum}")
    return value


def env_float(name: str, default: float, *, minimum: float = 0.0) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a number") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name}={value} must be at least {minimum}")
    return value


def env_origin(name: str) -> str:
    """An http(s) origin (``scheme://host[:port]``, lowercased, no trailing slash), or "".
    Only an origin: a path, query or fragment would join ambiguously with our own paths."""
    raw = os.environ.get(name, "")
    text = raw.strip()
    if not text:
        return ""
    parts = urlsplit(text)
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} has a bad port") from None
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ImproperlyConfigured(
            f"{name}={raw!r} must be an origin like https://ether.example.com"
        )
    if parts.path not in {"", "/"} or parts.query or parts.fragment or "@" in parts.netloc:
        raise ImproperlyConfigured(
            f"{name}={raw!r} must be only scheme://host[:port] (no path, query, fragment "
            "or credentials)"
        )
    return f"{parts.scheme}://{parts.netloc}".lower()


def env_seconds_list(name: str, default: str) -> tuple[float, ...]:
    """``"10,60,300"`` → (10.0, 60.0, 300.0): a comma list of non-negative seconds."""
    raw = os.environ.get(name) or default
    try:
        values = tuple(float(part) for part in raw.split(",") if part.strip())
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a comma list of seconds") from None
    if any(v < 0 for v in values):
        raise ImproperlyConfigured(f"{name}={raw!r}: seconds cannot be negative")
    return values


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value not in choices:
        raise ImproperlyConfigured(f"{name}={raw!r} must be one of: {', '.join(choices)}")
    return value


def env_list(name: str, default: str) -> list[str]:
    """A comma-separated list; empty items are dropped, so ``""`` is the empty list."""
    raw = os.environ.get(name)
    return [item.strip() for item in (default if raw is None else raw).split(",") if item.strip()]


RATE_PERIODS = {"second": 1, "minute": 60, "hour": 3600}


def env_rate(name: str, default: str) -> tuple[int, int] | None:
    """``"600/minute"`` → (600, 60): requests per window of seconds; ``"off"``/``"0"`` → None."""
    raw = os.environ.get(name) or default
    text = raw.strip().lower()
    if text in {"0", "off", "none"}:
        return None
    count, _, period = text.partition("/")
    if not count.isdigit() or int(count) < 1 or period not in RATE_PERIODS:
        raise ImproperlyConfigured(
            f"{name}={raw!r} is not a rate: use '<count>/<second|minute|hour>' or 'off'"
        )
    return int(count), RATE_PERIODS[period]
