"""Rate limits: a fixed-window counter per caller and scope, shared by every process.

Scopes, declared on the views (``throttle_scope``, ``throttle_scopes_by_method``); each
set by env ``ETHER_RATE_<SCOPE>``, each ``"<count>/<second|minute|hour>"``, ``0`` or
``off`` to disable; parsed into ``settings.ETHER_RATE_LIMITS``):

- ``harness``: every request a harness app makes under ``/api/harness/`` (per app key);
- ``claim``: ``POST /api/harness/tasks/{id}/claim`` on top of ``harness`` (per app key),
  because a claim is the write that mints a lease;
- ``ticket``: ``POST /api/realtime/tickets`` (per user), because a ticket is a credential;
- ``login``: ``POST /login/`` and ``POST /admin/login/``, the sign-in pages, one count
  for both (per client address and per username, see ``login_attempt``), against
  password guessing. Over it the page answers its own 429 (``web.views``).

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

import hashlib
import logging
import math
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from django.db import connections
from rest_framework.request import Request

log = logging.getLogger(__name__)


def scopes_for(request: Request, view: Any) -> list[str]:
    """The scopes a request counts against, as its view declares them: ``throttle_scope``
    (DRF's own attribute) for every method, plus ``throttle_scopes_by_method`` for the
    writes that cost more (a claim mints a lease, a ticket is a credential). This module
    knows no route and no domain model."""
    return view_scopes(view, request.method)


def view_scopes(view: Any, method: str) -> list[str]:
    """The scopes a view declares for one method (also read by the OpenAPI schema)."""
    out = []
    scope = getattr(view, "throttle_scope", None)
    if scope:
        out.append(scope)
    out.extend(getattr(view, "throttle_scopes_by_method", {}).get(method, ()))
    return out


# The ASGI scope key of {scope: wait or None} a request was already counted against.
COUNTED = "ether.rate_counted"


def caller_identity(request: Request) -> str | None:
    """Who is counted: a credential that names its own ``rate_identity`` (a harness app),
    else the signed-in person. Integer ids restart in every database, and several
    databases may share one Redis (staging and production, parallel test runs), so the
    identity carries something unique to the row as well as its id."""
    identity = getattr(request.auth, "rate_identity", None)
    if isinstance(identity, str):
        return identity
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
        # Scopes a layer in front of Django already counted this request against, with
        # what the count said (the step fast lane, ether_site/fastlane.py, before it
        # handed the request on): counted once, refused alike.
        counted = getattr(request._request, "scope", {}).get(COUNTED, {})
        for scope in scopes_for(request, view):
            wait = counted[scope] if scope in counted else hit(scope, identity)
            if wait is not None:
                self._wait = wait
                return False
        return True

    def wait(self) -> float | None:
        return self._wait


def hit(scope: str, identity: str) -> float | None:
    """Counts one request of ``identity`` against ``scope``'s limit, as the throttle does:
    None when allowed (or the scope has no limit), else the seconds to wait."""
    rate = settings.ETHER_RATE_LIMITS.get(scope)
    return None if rate is None else _count(scope, identity, *rate)[1]


def _count(scope: str, identity: str, limit: int, seconds: int) -> tuple[str, float | None]:
    """Counts one request: its counter's key, and None when allowed or else the seconds
    until the window ends."""
    now = time.time()
    window = int(now // seconds)
    key = f"rate:{scope}:{identity}:{seconds}:{window}"
    try:
        count = _counted(key, timeout=seconds + 1)
    except ValueError:
        # The key expired between add and incr: the window just ended, so this is a first hit.
        return key, None
    except Exception as exc:  # a cache outage must not fail the request
        log.warning("rate limiter unavailable, request allowed: %s", exc)
        return key, None
    if count <= limit:
        return key, None
    return key, max(1.0, math.ceil((window + 1) * seconds - now))


def _counted(key: str, *, timeout: int) -> int:
    """Adds one to ``key``'s counter in the ``ratelimit`` cache, made at 0 with
    ``timeout`` if missing; its new value.

    On Redis, one round trip: ``SET NX EX`` and ``INCR`` in one ``MULTI`` (atomic, so the
    counter cannot expire between the two). Through Django's cache API the same count was
    three (``add``; ``incr`` asks ``EXISTS`` before its ``INCR``), paid by every harness
    request, and by the step lane's one writer thread before each step it writes (issue
    18, docs/performance.md §8 "Eighth pass"). The counter is a plain integer either way
    (Django's Redis serializer stores ints unpickled), so ``cache.get`` still reads it."""
    cache = caches["ratelimit"]
    if isinstance(cache, RedisCache):
        name = cache.make_and_validate_key(key)
        # Django's client for the key's server (its public API has no pipeline).
        client = cache._cache.get_client(name, write=True)
        with client.pipeline(transaction=True) as pipe:
            pipe.set(name, 0, ex=timeout, nx=True)
            pipe.incr(name)
            _, count = pipe.execute()
        return int(count)
    # add() is a no-op when the key exists, so concurrent first hits share one counter.
    cache.add(key, 0, timeout=timeout)
    return int(cache.incr(key))


@dataclass(frozen=True)
class LoginAttempt:
    """One sign-in attempt as counted: the counters it took a place in, and None when it
    may go on or else the seconds until it may be tried again."""

    keys: tuple[str, ...]
    wait: float | None


def login_attempt(*, client_ip: str, username: str) -> LoginAttempt:
    """Counts a sign-in attempt before its password is checked, per client address and
    per username, so that neither many passwords on one account nor one password sprayed
    over many accounts goes faster than ``ETHER_RATE_LOGIN``.

    Counting first (then ``login_forgive`` on success) rather than counting failures
    afterwards keeps the bound exact under concurrent guesses: a refused attempt never
    reaches the password check. The username is hashed (it is whatever was typed, of any
    length) and casefolded, so case variants share a count. Both identities carry the
    database's name: usernames and addresses repeat across databases sharing one Redis.
    """
    rate = settings.ETHER_RATE_LIMITS.get("login")
    if rate is None:
        return LoginAttempt(keys=(), wait=None)
    database = str(connections["default"].settings_dict["NAME"])
    name = hashlib.sha256(username.casefold().encode("utf-8", "replace")).hexdigest()[:32]
    keys, waits = [], []
    for identity in (f"ip:{client_ip}", f"name:{name}"):
        key, wait = _count("login", f"{database}:{identity}", *rate)
        keys.append(key)
        if wait is not None:
            waits.append(wait)
    return LoginAttempt(keys=tuple(keys), wait=max(waits) if waits else None)


def login_forgive(attempt: LoginAttempt) -> None:
    """Takes a successful sign-in back out of its counters: only failures count."""
    cache = caches["ratelimit"]
    for key in attempt.keys:
        try:
            cache.decr(key)
        except ValueError:
            pass  # the window ended meanwhile and its counter with it
        except Exception as exc:
            log.warning("rate limiter unavailable, sign-in not forgiven: %s", exc)
