"""Tasks, the runs that lease them, and what a run reports: steps, interrupts, results.

A ``Run`` *is* the lease. At most one run per task is ``live`` (a partial unique index
backs this, so even a bug cannot produce two), and a live run whose ``lease_expires_at``
has passed is no lease at all: the next claim or the sweeper marks it ``expired``.
"""

from __future__ import annotations

import math

from django.conf import settings
from django.db import models
from django.utils import timezone

from accounts.models import Org, Project, Repository
from api.ids import (
    new_harness_id,
    new_int_id,
    new_note_id,
    new_run_id,
    new_step_id,
    new_task_id,
)


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


class Step(models.Model):
    public_id = models.CharField(max_length=40, unique=True, default=new_step_id, editable=False)
    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="steps")
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="steps")
    seq = models.PositiveIntegerField(
        help_text="seq of its os.harness.step event on the task topic"
    )
    phase = models.CharField(max_length=64)
    user_message = models.TextField()
    internal_label = models.CharField(max_length=200, blank=True)
    client_step_id = models.CharField(max_length=200, null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["run", "client_step_id"],
                condition=models.Q(client_step_id__isnull=False),
                name="client_step_id_per_run",
            )
        ]

    def __str__(self) -> str:
        return self.public_id


class InterruptQuerySet(models.QuerySet):
    def open(self) -> InterruptQuerySet:
        return self.filter(answered_at__isnull=True, withdrawn_at__isnull=True)


class Interrupt(models.Model):
    """A question to the user, from ``interrupt`` or from a ``blocked`` result.

    It is open until answered, or withdrawn when its run ends (a result) or its task is
    cancelled: nobody is left to read the answer then.
    """

    public_id = models.CharField(max_length=40, unique=True, default=new_int_id, editable=False)
    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="interrupts")
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="interrupts")
    source = models.CharField(max_length=10, default="interrupt")  # interrupt | result
    question = models.TextField()
    choices = models.JSONField(default=list)
    # With choices, the answer must be one of them unless the harness allowed free text.
    allow_free_text = models.BooleanField(default=False)
    answer = models.TextField(null=True, blank=True)
    answered_at = models.DateTimeField(null=True, blank=True)
    answered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    withdrawn_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = InterruptQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["task"],
                condition=models.Q(answered_at__isnull=True, withdrawn_at__isnull=True),
                name="one_open_question_per_task",
            )
        ]

    def __str__(self) -> str:
        return self.public_id


class MessageKind(models.TextChoices):
    FEEDBACK = "feedback"  # given on reopen: for the next run's bundle
    MESSAGE = "message"  # sent to a task in progress: for the live run's next heartbeat


class TaskMessage(models.Model):
    """What a person tells the harness outside a question (docs/contract.md §6).

    Feedback reaches every later bundle of the task. A message is handed to exactly one
    heartbeat: the one that takes it sets ``delivered_at`` and ``delivered_run`` inside
    its transaction, under the task row lock, so two heartbeats racing cannot both take
    it (a lost response is recovered by retrying with the same Idempotency-Key).
    """

    public_id = models.CharField(max_length=40, unique=True, default=new_note_id, editable=False)
    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="messages")
    kind = models.CharField(max_length=10, choices=MessageKind.choices)
    text = models.TextField()
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    created_at = models.DateTimeField(default=timezone.now)
    delivered_run = models.ForeignKey(
        Run, on_delete=models.SET_NULL, null=True, blank=True, related_name="messages_taken"
    )
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["task", "kind", "delivered_at"])]

    def __str__(self) -> str:
        return self.public_id


class ResultStatus(models.TextChoices):
    SUBMITTED = "submitted"
    BLOCKED = "blocked"
    NO_CHANGES = "no_changes"


class Result(models.Model):
    run = models.OneToOneField(Run, on_delete=models.CASCADE, related_name="result")
    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="results")
    status = models.CharField(max_length=12, choices=ResultStatus.choices)
    agent_status = models.TextField(blank=True)
    artifact = models.JSONField(null=True, blank=True)
    working_summary = models.TextField(blank=True)
    no_changes_reason = models.TextField(blank=True)
    question = models.TextField(blank=True)
    # A retry with the same fingerprint answers as the first time
    # (tasks.serializers.harness.ResultOut reads the task's status and the question's id of
    # then from ``response``); any other is run_finished. Rows stored before issue 13 hold
    # the whole answer: a superset.
    fingerprint = models.CharField(max_length=64)
    response = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.status} for {self.run}"


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


# Webhook models live with the webhook code; imported here so Django registers them.
from tasks.webhooks.models import (  # noqa: E402, F401
    DeliveryStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
