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
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["task", "version"], name="delivery_version_per_task"),
            # A run has one result, so one payload: a replayed result can never add a second.
            models.UniqueConstraint(fields=["run"], name="one_delivery_per_run"),
        ]

    def __str__(self) -> str:
        return f"{self.task} v{self.version} ({self.status})"
