"""Tenancy: orgs, their members, projects and repositories, and personal access tokens.

Every other app is scoped by these objects. The tables keep the names the ``corpus`` app
gave them (``db_table``), so a database made before the move keeps its rows.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class Org(models.Model):
    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "corpus_org"

    def __str__(self) -> str:
        return self.slug


class Membership(models.Model):
    """A user belongs to exactly one org: every request then has one unambiguous scope."""

    org = models.ForeignKey(Org, on_delete=models.CASCADE, related_name="memberships")
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="membership"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "corpus_membership"

    def __str__(self) -> str:
        return f"{self.user} in {self.org}"


class Project(models.Model):
    org = models.ForeignKey(Org, on_delete=models.CASCADE, related_name="projects")
    slug = models.SlugField(max_length=64)
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "corpus_project"
        constraints = [models.UniqueConstraint(fields=["org", "slug"], name="project_slug_per_org")]

    def __str__(self) -> str:
        return f"{self.org.slug}/{self.slug}"


class Repository(models.Model):
    org = models.ForeignKey(Org, on_delete=models.CASCADE, related_name="repositories")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="repositories")
    full_name = models.CharField(max_length=200, help_text='"owner/name", as on the forge')
    url = models.URLField(max_length=300, help_text="https://github.com/owner/name")
    default_branch = models.CharField(max_length=200, default="main")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "corpus_repository"
        verbose_name_plural = "repositories"
        constraints = [
            models.UniqueConstraint(fields=["org", "full_name"], name="repo_name_per_org")
        ]

    def __str__(self) -> str:
        return self.full_name


class AccessTokenQuerySet(models.QuerySet):
    def usable(self) -> AccessTokenQuerySet:
        now = timezone.now()
        return self.filter(revoked_at__isnull=True).filter(
            models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=now)
        )


class AccessToken(models.Model):
    """A personal access token: shown once, stored only as its SHA-256."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="access_tokens"
    )
    label = models.CharField(max_length=100, blank=True)
    token_hash = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=16, help_text="First characters, to recognise a token")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = AccessTokenQuerySet.as_manager()

    class Meta:
        db_table = "corpus_accesstoken"

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.user})"
