"""Harness apps authenticate with their API key: ``Authorization: Bearer eth_app_…``."""

from __future__ import annotations

import copy
import threading
import time
from typing import Any

from django.conf import settings
from django.db.models.signals import post_save
from rest_framework import authentication, exceptions, permissions
from rest_framework.request import Request

from accounts.credentials import HARNESS_KEY_PREFIX, hash_secret
from api.auth import bearer_token
from tasks.models import HarnessApp

# Key hash → (the app row as read, monotonic time it was read). Every harness request
# looked its app up (one query, 1 of a step's 16, issue 18); a harness sends the same key
# many times a second. What makes the cache safe:
# - a key hash names one app forever (a rotated key gets a new hash; the old one is no
#   longer found once its entry is dropped);
# - a revoke or rotation in this process drops every entry (``forget``, on save and in
#   ``harness_app_revoke``); in another process an entry lives ETHER_AUTH_CACHE_SECONDS;
# - no write trusts it: every guarded write reads the run's app again after taking the
#   task's row lock (``guard_write``: revoked, or another key, is ``lease_lost``; the revoke
#   also ended the leases), and a claim reads the key again in its transaction. What a
#   stale entry can still do elsewhere is read for a few seconds (docs/performance.md).
_cache: dict[str, tuple[HarnessApp, float]] = {}
_cache_lock = threading.Lock()
_CACHE_MAX = 10_000


def forget() -> None:
    """Drops every cached key: a key was revoked or rotated (or an app changed)."""
    with _cache_lock:
        _cache.clear()


def _forget_on_save(**_kwargs: Any) -> None:
    forget()


post_save.connect(_forget_on_save, sender=HarnessApp, dispatch_uid="harness-auth-cache")


def app_for_key_hash(key_hash: str, *, read_only: bool = False) -> HarnessApp | None:
    """The app of a key, from the cache when it is fresh. A request gets its own copy to
    change; ``read_only`` callers (the step lane, which only reads it) get the cached
    instance itself and must not change it."""
    ttl = settings.ETHER_AUTH_CACHE_SECONDS
    now = time.monotonic()
    if ttl > 0:
        with _cache_lock:
            hit = _cache.get(key_hash)
        if hit is not None and now - hit[1] < ttl:
            return hit[0] if read_only else copy.copy(hit[0])
    app = HarnessApp.objects.select_related("org").filter(key_hash=key_hash).first()
    if app is not None and app.revoked_at is None and ttl > 0:
        with _cache_lock:
            if len(_cache) >= _CACHE_MAX:
                _cache.clear()
            _cache[key_hash] = (copy.copy(app), now)
    return app


class HarnessKeyAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        key = bearer_token(request)
        if key is None:
            return None
        if not key.startswith(HARNESS_KEY_PREFIX):
            raise exceptions.AuthenticationFailed(
                "Harness routes need a harness app key (eth_app_…), not a personal token."
            )
        app = app_for_key_hash(hash_secret(key))
        if app is None:
            raise exceptions.AuthenticationFailed("Unknown harness key.")
        if app.revoked_at is not None:
            raise exceptions.AuthenticationFailed("This harness key has been revoked.")
        return app, app

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="ether-harness"'


class IsHarnessApp(permissions.BasePermission):
    def has_permission(self, request: Request, view: Any) -> bool:
        if not isinstance(request.auth, HarnessApp):
            raise exceptions.NotAuthenticated("Send 'Authorization: Bearer <harness key>'.")
        return True
