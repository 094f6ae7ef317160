"""Tasks and the runs that lease them (what a run reports: ``tasks.models.reports``).

A ``Run`` *is* the lease. At most one run per task is ``live`` (a partial unique index
backs this, so even a bug cannot produce two), and a live run whose ``lease_expires_at``
has passed is no lease at all: the next claim or the sweeper marks it ``expired``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import models
from django.utils import timezone

from accounts.models import Org, Project, Repository
from api.ids import new_run_id, new_task_id
from tasks.models.harnesses import Harness, HarnessApp

if TYPE_CHECKING:
    from tasks.models.reports import Interrupt


class TaskStatus(models.TextChoices):
    READY = "ready"
    IN_PROGRESS = "in_progress"
    PAUSED = "paused"
    COMPLETED = "completed"
    NO_CHANGES = "no_changes"
    CANCELLED = "cancelled"


CLOSED_STATUSES = (TaskStatus.COMPLETED, TaskStatus.NO_CHANGES, TaskStatus.CANCELLED)
CLAIMABLE_STATUSES = (TaskStatus.READY, TaskStatus.IN_PROGRESS)


class Task(models.Model):
    public_id = models.CharField(max_length=40, unique=True, default=new_task_id, editable=False)
    org = models.ForeignKey(Org, on_delete=models.CASCADE, related_name="tasks")
    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="tasks")
    repo = models.ForeignKey(Repository, on_delete=models.PROTECT, related_name="tasks")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="tasks"
    )
    title = models.CharField(max_length=300)
    prompt = models.TextField()
    definition_of_done = models.JSONField(default=list)
    branch_scope = models.CharField(max_length=200, default="ether/*")
    status = models.CharField(max_length=16, choices=TaskStatus.choices, default=TaskStatus.READY)
    # Bumped by every grant; a write carrying an older epoch is fenced off.
    lease_epoch = models.PositiveIntegerField(default=0)
    cancel_requested = models.BooleanField(default=False)
    # Only this app may claim the task (docs/contract.md §6); null: any app of the org.
    # PROTECT: deleting the app must not quietly open its tasks to every other app.
    assigned_app = models.ForeignKey(
        HarnessApp,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="assigned_tasks",
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["org", "status"]),
            # claim-next and GET /api/harness/tasks: the org's ready tasks, oldest first.
            models.Index(fields=["org", "status", "public_id"], name="task_ready_oldest"),
        ]

    def __str__(self) -> str:
        return self.public_id

    @property
    def is_closed(self) -> bool:
        return self.status in CLOSED_STATUSES

    @property
    def live_run(self) -> Run | None:
        prefetched = getattr(self, "prefetched_live_runs", None)  # tasks_for_org
        if prefetched is not None:
            return prefetched[0] if prefetched else None
        return Run.objects.select_related("app").filter(task=self, status=RunStatus.LIVE).first()

    @property
    def open_question(self) -> Interrupt | None:
        prefetched = getattr(self, "prefetched_open_questions", None)  # tasks_for_org
        if prefetched is not None:
            return prefetched[0] if prefetched else None
        # Interrupt is a report (tasks.models.reports), which names Task: imported here.
        from tasks.models.reports import Interrupt

        return (
            Interrupt.objects.select_related("run", "answered_by").filter(task=self).open().first()
        )


class RunStatus(models.TextChoices):
    LIVE = "live"
    FINISHED = "finished"
    EXPIRED = "expired"
    RELEASED = "released"


class RunQuerySet(models.QuerySet):
    def live(self) -> RunQuerySet:
        return self.filter(status=RunStatus.LIVE)

    def due(self, now: object) -> RunQuerySet:
        """Live runs whose lease has run out but that nobody has marked expired yet."""
        return self.filter(status=RunStatus.LIVE, lease_expires_at__lte=now)


class Run(models.Model):
    """One attempt at a task by one harness app: the lease."""

    public_id = models.CharField(max_length=40, unique=True, default=new_run_id, editable=False)
    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="runs")
    app = models.ForeignKey(HarnessApp, on_delete=models.PROTECT, related_name="runs")
    status = models.CharField(max_length=10, choices=RunStatus.choices, default=RunStatus.LIVE)
    lease_epoch = models.PositiveIntegerField()
    lease_expires_at = models.DateTimeField()
    checkpoint = models.JSONField(null=True, blank=True)
    checkpoint_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=20, blank=True)
    released_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    # The definition the run started under (the app's at claim time): session_count.
    harness = models.ForeignKey(
        Harness, on_delete=models.PROTECT, null=True, blank=True, related_name="runs"
    )

    objects = RunQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["task"], condition=models.Q(status="live"), name="one_live_run_per_task"
            )
        ]
        indexes = [models.Index(fields=["status", "lease_expires_at"])]

    def __str__(self) -> str:
        return self.public_id

    @property
    def lease_live(self) -> bool:
        return self.status == RunStatus.LIVE and self.lease_expires_at > timezone.now()

    @property
    def lease_seconds_left(self) -> int:
        """Whole seconds until the lease lapses; 0 once the run is no longer live."""
        if self.status != RunStatus.LIVE:
            return 0
        return max(0, math.floor((self.lease_expires_at - timezone.now()).total_seconds()))
