"""Harness apps authenticate with their API key: ``Authorization: Bearer eth_app_…``."""

from __future__ import annotations

from typing import Any

from rest_framework import authentication, exceptions, permissions
from rest_framework.request import Request

from accounts.credentials import HARNESS_KEY_PREFIX, hash_secret
from api.auth import bearer_token
from tasks.models import HarnessApp


class HarnessKeyAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        key = bearer_token(request)
        if key is None:
            return None
        if not key.startswith(HARNESS_KEY_PREFIX):
            raise exceptions.AuthenticationFailed(
                "Harness routes need a harness app key (eth_app_…), not a personal token."
            )
        app = HarnessApp.objects.select_related("org").filter(key_hash=hash_secret(key)).first()
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
