"""The one model of the API plumbing: stored answers to retried POSTs.

Its table keeps the name the ``corpus`` app gave it (``db_table``), so a database made
before the move keeps its rows.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class IdempotencyRecord(models.Model):
    """The stored answer to a POST sent with ``Idempotency-Key``.

    The row is inserted (``in_flight``) before the handler runs and completed in the same
    transaction as the handler's writes, so a crash leaves an ``in_flight`` row whose write
    rolled back: it is safe to run again once it is older than the lock window.
    """

    IN_FLIGHT = "in_flight"
    DONE = "done"

    scope = models.CharField(max_length=80, help_text="app:<pk> or user:<pk>")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)
    state = models.CharField(max_length=10, default=IN_FLIGHT)
    status_code = models.PositiveSmallIntegerField(null=True)
    body = models.JSONField(null=True)
    headers = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        db_table = "corpus_idempotencyrecord"
        constraints = [
            models.UniqueConstraint(fields=["scope", "key"], name="idempotency_key_per_scope")
        ]

    def __str__(self) -> str:
        return f"{self.scope} {self.key}"


class WorkerHeartbeat(models.Model):
    """The last tick of a background worker (the lease sweeper, the webhook sender).

    One row per worker name, updated in place on every loop (``api.heartbeat``);
    ``/readyz`` fails when a row is older than ``ETHER_WORKER_STALE_SECONDS``.
    """

    name = models.CharField(max_length=64, unique=True)
    beat_at = models.DateTimeField()
    pid = models.PositiveIntegerField(default=0)
    host = models.CharField(max_length=255, blank=True)
    started_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.name} at {self.beat_at}"
