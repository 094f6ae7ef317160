"""Harness definitions and the harness apps registered in an org."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from accounts.models import Org
from api.ids import new_harness_id


class HarnessStatus(models.TextChoices):
    ACTIVE = "active"
    ARCHIVED = "archived"
    DELETED = "deleted"


class Harness(models.Model):
    """A harness definition (docs/contract.md §4): how an org's harnesses behave.

    Fields mirror the reference resource; JSON fields hold the validated shapes of
    ``tasks/harnesses/definitions.py``. Inheritance is resolved at read time, so a change to a
    parent shows in every child at once. Built-in definitions belong to no org: every
    org sees them, nobody edits them, anyone may copy them.
    """

    public_id = models.CharField(max_length=48, unique=True, default=new_harness_id, editable=False)
    org = models.ForeignKey(
        Org, on_delete=models.CASCADE, related_name="harnesses", null=True, blank=True
    )
    name = models.CharField(max_length=64)
    display_name = models.CharField(max_length=200)
    description = models.TextField(null=True, blank=True)
    system_prompt = models.TextField(blank=True)
    capabilities = models.JSONField(default=list, blank=True)
    mcp_servers = models.JSONField(default=dict, blank=True)
    network_access = models.JSONField(null=True, blank=True)
    parent = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="children"
    )
    initial_files = models.JSONField(default=list, blank=True)
    default_model_id = models.CharField(max_length=200, null=True, blank=True)
    status = models.CharField(
        max_length=10, choices=HarnessStatus.choices, default=HarnessStatus.ACTIVE
    )
    is_built_in = models.BooleanField(default=False)
    # The org setting "default harness": at most one per org (constraint below).
    is_default = models.BooleanField(default=False)
    tags = models.JSONField(default=list, blank=True)
    # Everruns' fields that Ether stores and serves but does not act on: metadata for the
    # harness's own LLM requests, and whether its model may call tools in parallel.
    embedder_metadata = models.JSONField(default=dict, blank=True)
    parallel_tool_calls = models.BooleanField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    archived_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "harnesses"
        constraints = [
            # A deleted definition gives its name back.
            models.UniqueConstraint(
                fields=["org", "name"],
                condition=~models.Q(status="deleted"),
                name="harness_name_per_org",
            ),
            models.UniqueConstraint(
                fields=["name"],
                condition=models.Q(org__isnull=True),
                name="built_in_harness_name",
            ),
            models.UniqueConstraint(
                fields=["org"], condition=models.Q(is_default=True), name="one_default_harness"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class HarnessApp(models.Model):
    """An external harness registered in an org; it authenticates with an API key."""

    org = models.ForeignKey(Org, on_delete=models.CASCADE, related_name="harness_apps")
    app_id = models.SlugField(max_length=64)
    name = models.CharField(max_length=200, blank=True)
    harness = models.ForeignKey(
        Harness,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="apps",
        help_text="The definition its claims carry, resolved through its parents",
    )
    key_hash = models.CharField(max_length=64, unique=True)
    key_prefix = models.CharField(max_length=16)
    created_at = models.DateTimeField(default=timezone.now)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["org", "app_id"], name="app_id_per_org")]

    def __str__(self) -> str:
        return f"{self.org.slug}/{self.app_id}"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    @property
    def rate_identity(self) -> str:
        """Who api.ratelimit counts: the key, not the row id (ids repeat across databases)."""
        return f"app:{self.key_hash[:32]}"

    # DRF treats whatever authenticate() returns as the user; an app is an authenticated caller.
    @property
    def is_authenticated(self) -> bool:
        return True

    def idempotency_scope(self) -> str:
        return f"app:{self.pk}"
