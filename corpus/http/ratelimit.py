"""Rate limits: a fixed-window counter per caller and scope, shared by every process.

Scopes (env ``ETHER_RATE_<SCOPE>``, each ``"<count>/<second|minute|hour>"``, ``0`` or
``off`` to disable; parsed into ``settings.ETHER_RATE_LIMITS``):

- ``harness``: every request a harness app makes under ``/api/harness/`` (per app key);
- ``claim``: ``POST /api/harness/tasks/{id}/claim`` on top of ``harness`` (per app key),
  because a claim is the write that mints a lease;
- ``ticket``: ``POST /api/realtime/tickets`` (per user), because a ticket is a credential.

Counting: one counter per caller, scope and window (``incr`` on the ``ratelimit`` cache).
With ``REDIS_URL`` that cache is Redis, so all daphne processes share one count and
``INCR`` is atomic; without it the cache is the process's memory, which is exact for
the single process ``make run`` starts (several processes without Redis each count on
their own). A fixed window lets a caller send up to twice the limit across a window
boundary; that is the price of one key per window instead of a log per caller.

Over the limit, DRF's ``Throttled`` becomes a 429 problem document (``code: throttled``)
with ``Retry-After`` set to the seconds left in the window. If the cache itself is
unreachable (Redis down), requests are let through and a warning is logged: losing the
limiter must not take the harness API down with it.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from django.conf import settings
from django.core.cache import caches
from rest_framework.request import Request

log = logging.getLogger(__name__)


def scopes_for(request: Request) -> list[str]:
    """The scopes a request counts against, from its route and its credential."""
    from tasks.models import HarnessApp

    match = getattr(request, "resolver_match", None)
    name = match.url_name if match else None
    out = []
    if isinstance(request.auth, HarnessApp):
        out.append("harness")
        if name == "harness-claim" and request.method == "POST":
            out.append("claim")
    if name == "realtime-tickets" and request.method == "POST":
        out.append("ticket")
    return out


def caller_identity(request: Request) -> str | None:
    """Who is counted. Integer ids restart in every database, and several databases may
    share one Redis (staging and production, parallel test runs), so the identity carries
    something unique to the row as well as its id."""
    from tasks.models import HarnessApp

    if isinstance(request.auth, HarnessApp):
        return f"app:{request.auth.key_hash[:32]}"
    user = getattr(request, "user", None)
    if user is not None and getattr(user, "is_authenticated", False):
        return f"user:{user.pk}:{user.date_joined.timestamp():.6f}"
    return None


class RateThrottle:
    """A DRF throttle (``DEFAULT_THROTTLE_CLASSES``); it runs after authentication."""

    def __init__(self) -> None:
        self._wait: float | None = None

    def allow_request(self, request: Request, view: Any) -> bool:
        identity = caller_identity(request)
        if identity is None:
            return True
        for scope in scopes_for(request):
            rate = settings.ETHER_RATE_LIMITS.get(scope)
            if rate is None:
                continue
            wait = _hit(scope, identity, *rate)
            if wait is not None:
                self._wait = wait
                return False
        return True

    def wait(self) -> float | None:
        return self._wait


def _hit(scope: str, identity: str, limit: int, seconds: int) -> float | None:
    """Counts one request; None when allowed, else the seconds until the window ends."""
    now = time.time()
    window = int(now // seconds)
    key = f"rate:{scope}:{identity}:{seconds}:{window}"
    cache = caches["ratelimit"]
    try:
        # add() is a no-op when the key exists, so concurrent first hits share one counter.
        cache.add(key, 0, timeout=seconds + 1)
        count = cache.incr(key)
    except ValueError:
        # The key expired between add and incr: the window just ended, so this is a first hit.
        return None
    except Exception as exc:  # a cache outage must not fail the request
        log.warning("rate limiter unavailable, request allowed: %s", exc)
        return None
    if count <= limit:
        return None
    return max(1.0, math.ceil((window + 1) * seconds - now))
