"""What a finished run hands to people: a versioned payload of typed blocks
(docs/contract.md §5)."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from api.ids import new_dlv_id
from tasks.models import Run, Task


class Delivery(models.Model):
    """One composed payload per result. ``version`` counts the task's deliveries (1, 2, …)
    as it is reopened or resumed and finished again; the newest one is what the task shows."""

    public_id = models.CharField(max_length=40, unique=True, default=new_dlv_id, editable=False)
    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="deliveries")
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(max_length=12)  # the result's status: submitted | blocked | …
    version = models.PositiveIntegerField()
    blocks = models.JSONField()
    # "result": composed when the result was stored; "verification": the same result
    # again once GitHub answered the PR check (delivery.verification).
    source = models.CharField(max_length=12, default="result")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["task", "version"], name="delivery_version_per_task"),
            # A run has one result, so one payload from it: a replayed result can never
            # add a second. Verification adds versions of the same run on purpose.
            models.UniqueConstraint(
                fields=["run"],
                condition=models.Q(source="result"),
                name="one_result_delivery_per_run",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.task} v{self.version} ({self.status})"


class PrCheck(models.Model):
    """The GitHub check of one delivered PR: asked after the result commits, retried by
    ``sweep_verifications`` when GitHub could not answer or a crash left it running.

    ``state``: ``pending`` (to ask, at ``next_attempt_at``), ``running`` (a worker has
    it since ``claimed_at``), ``done``. ``block`` is the last ``checks`` block composed.
    """

    delivery = models.OneToOneField(Delivery, on_delete=models.CASCADE, related_name="pr_check")
    state = models.CharField(max_length=10, default="pending")
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    claimed_at = models.DateTimeField(null=True, blank=True)
    block = models.JSONField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["state", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"PR check of {self.delivery}: {self.state}"
