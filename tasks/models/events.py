"""Persisted realtime events with their gapless per-topic counters, and the single-use
tickets that open the realtime URL."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from accounts.models import Org
from tasks.models.harnesses import HarnessApp
from tasks.models.tasks import Task


class EventTopic(models.Model):
    """The per-topic counter that makes event ``seq`` gapless: one row update per event."""

    name = models.CharField(max_length=120, unique=True)
    last_seq = models.PositiveBigIntegerField(default=0)

    def __str__(self) -> str:
        return self.name


class Event(models.Model):
    """A persisted realtime event. Written only by ``tasks.events``."""

    org = models.ForeignKey(Org, on_delete=models.CASCADE, related_name="events")
    topic = models.CharField(max_length=120)
    seq = models.PositiveBigIntegerField()
    name = models.CharField(max_length=64)
    task = models.ForeignKey(Task, on_delete=models.CASCADE, null=True, related_name="events")
    payload = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["topic", "seq"], name="seq_per_topic")]

    def __str__(self) -> str:
        return f"{self.topic}#{self.seq} {self.name}"


class RealtimeTicket(models.Model):
    """A single-use credential for the realtime URL, valid for seconds, so a long-lived
    token need not sit in a URL. Stored only as a hash."""

    # Who minted it: a person (``user``), or a harness app with its key (``harness_app``).
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.CASCADE)
    harness_app = models.ForeignKey(
        HarnessApp, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    # The token the ticket was minted with (none for a browser session): a socket opened
    # with the ticket is that token's stream, and revoking the token ends it.
    access_token = models.ForeignKey(
        "accounts.AccessToken", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    ticket_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"ticket for {self.user or self.harness_app} until {self.expires_at}"
