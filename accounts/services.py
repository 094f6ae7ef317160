"""Writes of tenancy: orgs, members, projects, repositories and access tokens."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from accounts.credentials import ACCESS_TOKEN_PREFIX, display_prefix, hash_secret, new_secret
from accounts.models import AccessToken, Membership, Org, Project, Repository
from accounts.revocation import announce_revoked, token_group
from api.errors import NotFound, ValidationFailed


def org_ensure(*, slug: str, name: str = "") -> Org:
    org, _ = Org.objects.get_or_create(slug=slug, defaults={"name": name or slug})
    return org


def member_ensure(*, org: Org, username: str, password: str | None = None, **fields: Any) -> Any:
    """The user, created if needed, as a member of ``org``."""
    user_model = get_user_model()
    with transaction.atomic():
        user, _created = user_model.objects.get_or_create(username=username, defaults=fields)
        if password is not None:
            user.set_password(password)
            user.save(update_fields=["password"])
        membership = Membership.objects.filter(user=user).select_related("org").first()
        if membership is None:
            Membership.objects.create(org=org, user=user)
        elif membership.org_id != org.pk:
            raise ValidationFailed(
                {"username": [f"{username} already belongs to {membership.org}."]}
            )
    return user


def project_ensure(*, org: Org, slug: str, name: str = "") -> Project:
    project, _ = Project.objects.get_or_create(org=org, slug=slug, defaults={"name": name or slug})
    return project


def repository_ensure(
    *, project: Project, full_name: str, url: str, default_branch: str = "main"
) -> Repository:
    repo, _ = Repository.objects.get_or_create(
        org=project.org,
        full_name=full_name,
        defaults={"project": project, "url": url, "default_branch": default_branch},
    )
    return repo


@dataclass(frozen=True)
class IssuedToken:
    token: AccessToken
    secret: str


def access_token_create(*, username: str, label: str = "", expires_at: Any = None) -> IssuedToken:
    """A new personal access token; the secret exists only in the return value."""
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise NotFound(f"No user {username!r}.")
    secret = new_secret(ACCESS_TOKEN_PREFIX)
    token = AccessToken.objects.create(
        user=user,
        label=label,
        token_hash=hash_secret(secret),
        prefix=display_prefix(secret),
        expires_at=expires_at,
    )
    return IssuedToken(token=token, secret=secret)


def access_token_revoke(*, token: AccessToken) -> None:
    """Revokes the token; the streams it opened close once this commits
    (``accounts/revocation.py``)."""
    with transaction.atomic():
        revoked = AccessToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        if revoked:
            announce_revoked(groups=[token_group(token.pk)], reason="token_revoked")


def access_token_update(*, token: AccessToken, label: str, expires_at: Any) -> AccessToken:
    """A token's label and expiry (the admin's change form). An expiry moved into the past
    ends the token's streams once this commits, as a revoke does; revoking is
    ``access_token_revoke``'s alone."""
    with transaction.atomic():
        AccessToken.objects.filter(pk=token.pk).update(label=label, expires_at=expires_at)
        if expires_at is not None and expires_at <= timezone.now():
            announce_revoked(groups=[token_group(token.pk)], reason="token_expired")
    token.label, token.expires_at = label, expires_at
    return token
