"""Webhook endpoints, the outbox of deliveries, and every attempt to send one.

Imported by ``tasks.models`` (so Django sees them as the ``tasks`` app's models); they
name the other models by string to keep that import one-way.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from api.ids import new_msg_id


class WebhookEndpoint(models.Model):
    """Where and how an app's webhooks go. Webhooks are on when both ``url`` and
    ``secret`` are set.

    The secrets are stored as they are, not hashed: the sender needs them to sign
    (docs/webhooks.md, "Secrets"). After a rotation the previous secret keeps signing,
    as a second signature, until ``previous_secret_until``.
    """

    app = models.OneToOneField("tasks.HarnessApp", on_delete=models.CASCADE, related_name="webhook")
    url = models.CharField(max_length=2000, blank=True)
    secret = models.CharField(max_length=100, blank=True)
    previous_secret = models.CharField(max_length=100, blank=True)
    previous_secret_until = models.DateTimeField(null=True, blank=True)
    # Health, kept by the sender on every attempt (the admin and metrics read them).
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_failure_at = models.DateTimeField(null=True, blank=True)
    failures_in_row = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"webhook of {self.app}"

    @property
    def enabled(self) -> bool:
        return bool(self.url and self.secret)


class DeliveryStatus(models.TextChoices):
    PENDING = "pending"  # waiting for its (next) attempt, or being sent
    DELIVERED = "delivered"  # a 2xx was received and recorded
    FAILED = "failed"  # given up after the last retry, or undeliverable


class WebhookDeliveryQuerySet(models.QuerySet):
    def pending(self) -> WebhookDeliveryQuerySet:
        return self.filter(status=DeliveryStatus.PENDING)


class WebhookDelivery(models.Model):
    """One message to one app: the outbox row, written in its change's transaction.

    ``body`` is the exact JSON text sent (and signed) on every attempt. Deliveries of one
    app about one task go out in ``id`` order: a later one waits while an earlier one is
    pending.
    """

    public_id = models.CharField(max_length=40, unique=True, default=new_msg_id, editable=False)
    app = models.ForeignKey(
        "tasks.HarnessApp", on_delete=models.CASCADE, related_name="webhook_deliveries"
    )
    task = models.ForeignKey(
        "tasks.Task",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="webhook_deliveries",
    )
    type = models.CharField(max_length=64)
    body = models.TextField()
    status = models.CharField(
        max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    # A sender's claim: another sender may take the delivery over once it has passed.
    claimed_until = models.DateTimeField(null=True, blank=True)
    claimed_by = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    objects = WebhookDeliveryQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "webhook deliveries"
        indexes = [
            models.Index(fields=["status", "next_attempt_at"]),
            models.Index(fields=["app", "task", "status"]),
        ]

    def __str__(self) -> str:
        return f"{self.public_id} {self.type}"


class WebhookAttempt(models.Model):
    """One try at sending a delivery: what came back, or why nothing did.

    Written when the sender claims the delivery, before it connects, and completed with
    the outcome; one left without ``finished_at`` belongs to a sender that died mid-send
    (the next claim marks it interrupted)."""

    delivery = models.ForeignKey(
        WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log"
    )
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    status_code = models.PositiveIntegerField(null=True, blank=True)
    ok = models.BooleanField()
    error = models.TextField(blank=True)
    url = models.CharField(max_length=2000)
    sender = models.CharField(max_length=64)

    class Meta:
        indexes = [models.Index(fields=["delivery", "started_at"])]

    def __str__(self) -> str:
        return f"{self.delivery_id} {self.status_code or self.error[:40]}"
