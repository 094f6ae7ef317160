"""People: a session or a personal access token (``eth_pat_…``), and the org they act in.

``UserAPIView`` is the base of every product route."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone
from rest_framework import authentication, exceptions, permissions
from rest_framework.request import Request
from rest_framework.views import APIView

from accounts.credentials import ACCESS_TOKEN_PREFIX, HARNESS_KEY_PREFIX, hash_secret
from accounts.models import AccessToken, Membership, Org
from api.auth import bearer_token


def user_for_token(token: str) -> tuple[AbstractBaseUser, AccessToken]:
    """The user behind a personal access token; revoked and expired tokens are refused."""
    row = AccessToken.objects.select_related("user").filter(token_hash=hash_secret(token)).first()
    if row is None:
        raise exceptions.AuthenticationFailed("Unknown access token.")
    if row.revoked_at is not None:
        raise exceptions.AuthenticationFailed("This access token has been revoked.")
    if row.expires_at is not None and row.expires_at <= timezone.now():
        raise exceptions.AuthenticationFailed("This access token has expired.")
    if not row.user.is_active:
        raise exceptions.AuthenticationFailed("This user is inactive.")
    return row.user, row


class AccessTokenAuthentication(authentication.BaseAuthentication):
    # Token formats taken without ``Bearer`` (none here; see EverrunsTokenAuthentication).
    bare_prefixes: tuple[str, ...] = ()

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        token = bearer_token(request, bare_prefixes=self.bare_prefixes)
        if token is None:
            return None
        if not token.startswith(ACCESS_TOKEN_PREFIX):
            raise exceptions.AuthenticationFailed(
                "This route needs a personal access token (eth_pat_…), not a harness key."
            )
        return user_for_token(token)

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="ether"'


class EverrunsTokenAuthentication(AccessTokenAuthentication):
    """``/v1`` also takes ``Authorization: <token>`` with no scheme, as Everruns' clients
    send it (docs/contract.md §4). Only Ether's own formats: a harness key so sent still
    gets its own 401, and any other bare value is refused like a bad scheme."""

    bare_prefixes = (ACCESS_TOKEN_PREFIX, HARNESS_KEY_PREFIX)


def org_of_user(user: Any) -> Org | None:
    membership = Membership.objects.select_related("org").filter(user_id=user.pk).first()
    return membership.org if membership else None


class IsOrgMember(permissions.BasePermission):
    """A signed-in person who belongs to an org; the org is kept on ``request.org``."""

    message = "You are not a member of any org."

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if user is None or not getattr(user, "is_authenticated", False):
            raise exceptions.NotAuthenticated("Sign in, or send 'Authorization: Bearer <token>'.")
        org = org_of_user(user)
        if org is None:
            return False
        request.org = org
        return True


# Django's session, with CSRF, serves the browser pages' own calls.
USER_AUTHENTICATION = [AccessTokenAuthentication, authentication.SessionAuthentication]


class UserAPIView(APIView):
    """Product routes: a person, by session or personal access token, acting in their org."""

    authentication_classes = USER_AUTHENTICATION
    permission_classes = [IsOrgMember]

    def org(self, request: Request) -> Org:
        return request.org


class EverrunsAPIView(UserAPIView):
    """``/v1`` routes (Everruns' resource shapes): the same people, and their token also
    without ``Bearer``."""

    authentication_classes = [EverrunsTokenAuthentication, authentication.SessionAuthentication]
