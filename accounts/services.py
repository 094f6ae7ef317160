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


# --- The admin's writes: each keeps the rules an org's data lives by ----------------------


def org_save(*, org: Org, slug: str, name: str) -> Org:
    """Creates (``org`` unsaved) or changes an org."""
    org.slug, org.name = slug, name
    with transaction.atomic():
        org.save()
    return org


def org_delete(*, org: Org) -> None:
    """Deletes the org and, with it, everything it holds (members, projects, tasks, …)."""
    with transaction.atomic():
        org.delete()


def membership_save(*, membership: Membership, org: Org, user: Any) -> Membership:
    """Puts ``user`` in ``org``. A user belongs to exactly one org: another org's member is
    refused (``ValidationFailed``), not moved."""
    with transaction.atomic():
        other = Membership.objects.filter(user=user).exclude(pk=membership.pk).first()
        if other is not None:
            raise ValidationFailed({"user": [f"{user} already belongs to {other.org}."]})
        membership.org, membership.user = org, user
        membership.save()
    return membership


def membership_delete(*, membership: Membership) -> None:
    with transaction.atomic():
        membership.delete()


def project_check(*, project: Project, org: Org) -> None:
    """A project with repositories stays in its org: they would be left in the old one.
    Raises ``ValidationFailed``."""
    if project.pk is None or project.org_id == org.pk:
        return
    if Repository.objects.filter(project=project).exists():
        raise ValidationFailed(
            {"org": [f"{project} has repositories in {project.org}; it cannot move to {org}."]}
        )


def project_save(*, project: Project, org: Org, slug: str, name: str) -> Project:
    """Creates (``project`` unsaved) or changes a project (``project_check``'s rule)."""
    with transaction.atomic():
        project_check(project=project, org=org)
        project.org, project.slug, project.name = org, slug, name
        project.save()
    return project


def project_delete(*, project: Project) -> None:
    with transaction.atomic():
        project.delete()


def repository_check(*, org: Org, project: Project) -> None:
    """A repository is in its project's org: the task scope reads both. Raises
    ``ValidationFailed``."""
    if project.org_id != org.pk:
        raise ValidationFailed({"project": [f"{project} belongs to {project.org}, not to {org}."]})


def repository_save(
    *,
    repository: Repository,
    org: Org,
    project: Project,
    full_name: str,
    url: str,
    default_branch: str,
) -> Repository:
    """Creates (``repository`` unsaved) or changes a repository (``repository_check``)."""
    with transaction.atomic():
        repository_check(org=org, project=project)
        repository.org, repository.project = org, project
        repository.full_name, repository.url = full_name, url
        repository.default_branch = default_branch
        repository.save()
    return repository


def repository_delete(*, repository: Repository) -> None:
    with transaction.atomic():
        repository.delete()
