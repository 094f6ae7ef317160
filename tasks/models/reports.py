"""What a run reports and a person says: steps, interrupts (questions), messages and
feedback, results."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from api.ids import new_int_id, new_note_id, new_step_id
from tasks.models.tasks import Run, Task


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
