"""What people do to tasks: create, edit, answer, reopen, cancel."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.models import Org, Project, Repository
from api.errors import ValidationFailed
from tasks import events
from tasks.context import task_document_sync
from tasks.errors import (
    InvalidTransition,
    TaskClosed,
    TaskNotEditable,
    TaskNotInProgress,
    TaskNotPaused,
)
from tasks.models import (
    CLOSED_STATUSES,
    HarnessApp,
    Interrupt,
    MessageKind,
    Run,
    RunStatus,
    Task,
    TaskMessage,
    TaskStatus,
)
from tasks.serializers.outputs import TaskRowOut
from tasks.services.expiry import lease_settle
from tasks.services.messages import message_record
from tasks.services.state import locked_task, set_task_status, withdraw_questions
from tasks.webhooks import outbox


def task_create(
    *,
    org: Org,
    owner: Any,
    title: str,
    prompt: str,
    definition_of_done: list[str],
    project: str,
    repo: str,
    branch_scope: str = "ether/*",
    assigned_app_id: str | None = None,
) -> Task:
    project_row = Project.objects.filter(org=org, slug=project).first()
    repo_row = Repository.objects.filter(org=org, full_name=repo).first()
    errors: dict[str, list[str]] = {}
    assigned = _assignable_app(org, assigned_app_id, errors)
    if project_row is None:
        errors["project"] = [f"No project {project!r} in this org."]
    if repo_row is None:
        errors["repo"] = [f"No repository {repo!r} in this org."]
    elif project_row is not None and repo_row.project_id != project_row.pk:
        errors["repo"] = [f"{repo} does not belong to project {project!r}."]
    if errors:
        raise ValidationFailed(errors)
    now = timezone.now()
    with transaction.atomic():
        task = Task.objects.create(
            org=org,
            project=project_row,
            repo=repo_row,
            owner=owner,
            title=title,
            prompt=prompt,
            definition_of_done=definition_of_done,
            branch_scope=branch_scope,
            assigned_app=assigned,
            created_at=now,
            updated_at=now,
        )
        events.timeline(
            task=task,
            kind="created",
            actor=events.actor_user(owner),
            summary=f"Task created: {title}",
            assigned_app_id=assigned.app_id if assigned else None,
        )
        events.activity(task=task, row=TaskRowOut(task).data)
        events.task_ready(task=task)
        task_document_sync(task, user=owner)
    return task


def _assignable_app(
    org: Org, app_id: str | None, errors: dict[str, list[str]]
) -> HarnessApp | None:
    """The org's unrevoked harness app ``app_id`` (None for None), or an error for it."""
    if app_id is None:
        return None
    app = HarnessApp.objects.filter(org=org, app_id=app_id).first()
    if app is None:
        errors["assigned_app_id"] = [f"No harness app {app_id!r} in this org."]
    elif app.revoked_at is not None:
        errors["assigned_app_id"] = [f"Harness app {app_id!r} is revoked."]
        return None
    return app


# What PATCH /api/tasks/{task_id} may change, and only while nobody works on the task.
EDITABLE_FIELDS = ("title", "prompt", "definition_of_done", "branch_scope", "assigned_app_id")
EDITABLE_STATUSES = (TaskStatus.READY, TaskStatus.PAUSED)


def task_update(*, task: Task, user: Any, changes: dict[str, Any]) -> Task:
    """Edits a task that is ``ready`` or ``paused`` (409 ``task_not_editable`` otherwise:
    a running harness works from the bundle it was given) and rewrites its task
    document. A task that becomes claimable by other apps wakes their claim-next."""
    unknown = set(changes) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValueError(f"not editable: {sorted(unknown)}")
    errors: dict[str, list[str]] = {}
    assigned = None
    if "assigned_app_id" in changes:
        assigned = _assignable_app(task.org, changes["assigned_app_id"], errors)
    if errors:
        raise ValidationFailed(errors)
    lease_settle(task_pk=task.pk)
    now = timezone.now()
    with transaction.atomic():
        task = locked_task(task)
        if task.status not in EDITABLE_STATUSES:
            raise TaskNotEditable(
                f"The task is {task.status}; it can be edited while ready or paused."
            )
        before = {name: _field(task, name) for name in EDITABLE_FIELDS}
        for name in ("title", "prompt", "definition_of_done", "branch_scope"):
            if name in changes:
                setattr(task, name, changes[name])
        if "assigned_app_id" in changes:
            task.assigned_app = assigned
        changed = sorted(name for name in EDITABLE_FIELDS if _field(task, name) != before[name])
        if not changed:
            return task
        task.updated_at = now
        task.save(
            update_fields=[
                "title",
                "prompt",
                "definition_of_done",
                "branch_scope",
                "assigned_app",
                "updated_at",
            ]
        )
        events.timeline(
            task=task,
            kind="edited",
            actor=events.actor_user(user),
            summary="Task edited: " + ", ".join(changed),
            changed=changed,
            assigned_app_id=_field(task, "assigned_app_id"),
        )
        events.activity(task=task, row=TaskRowOut(task).data)
        if task.status == TaskStatus.READY and "assigned_app_id" in changed:
            events.task_ready(task=task)
            # The grid's status did not change, so the outbox hears of it here: the newly
            # assigned app (or, unassigned, every app) is told the task is there to take.
            outbox.task_ready(task)
        task_document_sync(task, user=user)
    return task


def _field(task: Task, name: str) -> Any:
    if name == "assigned_app_id":
        return task.assigned_app.app_id if task.assigned_app_id else None
    return getattr(task, name)


def answer_check(interrupt: Interrupt, answer: str) -> None:
    """A question's ``choices`` bind its answer (exactly one of them, as the page's buttons
    send it) unless the harness allowed free text; a question without choices takes any."""
    if not interrupt.choices or interrupt.allow_free_text or answer in interrupt.choices:
        return
    listed = ", ".join(repr(choice) for choice in interrupt.choices)
    raise ValidationFailed(
        {"answer": [f"Must be one of the question's choices: {listed}."]},
        detail=f"This question takes one of its choices as the answer: {listed}.",
    )


def task_answer(*, task: Task, user: Any, answer: str) -> Interrupt:
    """Answers the open question. The task resumes under its live lease, or, if that lease
    has expired meanwhile, goes back to ready so the next claim reads the answer."""
    lease_settle(task_pk=task.pk)
    now = timezone.now()
    with transaction.atomic():
        task = locked_task(task)
        interrupt = Interrupt.objects.select_related("run").filter(task=task).open().first()
        if task.status != TaskStatus.PAUSED or interrupt is None:
            raise TaskNotPaused(f"The task is {task.status}; there is no open question.")
        answer_check(interrupt, answer)
        interrupt.answer = answer
        interrupt.answered_at = now
        interrupt.answered_by = user
        interrupt.save(update_fields=["answer", "answered_at", "answered_by"])
        live = Run.objects.filter(
            task=task, status=RunStatus.LIVE, lease_expires_at__gt=now
        ).exists()
        events.timeline(
            task=task,
            kind="answer",
            actor=events.actor_user(user),
            summary=answer,
            interrupt_id=interrupt.public_id,
            run_id=interrupt.run.public_id,
        )
        set_task_status(task, TaskStatus.IN_PROGRESS if live else TaskStatus.READY, now)
        task_document_sync(task, user=user)
        return interrupt


def task_reopen(*, task: Task, user: Any, feedback: str | None = None) -> Task:
    """Back to ready. ``feedback`` (what the next run should do differently) is kept on the
    task, in its timeline entry and its document, and goes into every later bundle."""
    now = timezone.now()
    with transaction.atomic():
        task = locked_task(task)
        if task.status not in (TaskStatus.COMPLETED, TaskStatus.NO_CHANGES):
            raise InvalidTransition(
                f"Only completed or no_changes tasks can be reopened; this one is {task.status}."
            )
        details: dict[str, Any] = {}
        if feedback:
            given = message_record(task=task, user=user, kind=MessageKind.FEEDBACK, text=feedback)
            details = {"feedback": feedback, "message_id": given.public_id}
        events.timeline(
            task=task,
            kind="reopen",
            actor=events.actor_user(user),
            summary=f"Task reopened with feedback: {feedback}" if feedback else "Task reopened",
            **details,
        )
        set_task_status(task, TaskStatus.READY, now, cancel_requested=False)
        return task


def task_message_send(*, task: Task, user: Any, text: str) -> TaskMessage:
    """A message to the harness working on the task: its live run's next heartbeat
    carries it (tasks/services/messages.py). Only while the task is in progress."""
    lease_settle(task_pk=task.pk)
    with transaction.atomic():
        task = locked_task(task)
        if task.status != TaskStatus.IN_PROGRESS:
            raise TaskNotInProgress(
                f"Messages reach a task in progress; this one is {task.status}."
            )
        return message_record(task=task, user=user, kind=MessageKind.MESSAGE, text=text)


def task_cancel(*, task: Task, user: Any) -> Task:
    """Cancels the task. Its live run learns on its next heartbeat; every write after is
    ``task_closed``."""
    now = timezone.now()
    with transaction.atomic():
        task = locked_task(task)
        if task.status in CLOSED_STATUSES:
            raise TaskClosed(f"The task is already {task.status}.")
        has_live = Run.objects.filter(task=task, status=RunStatus.LIVE).exists()
        withdraw_questions(task=task, now=now)
        events.timeline(
            task=task, kind="cancel", actor=events.actor_user(user), summary="Task cancelled"
        )
        set_task_status(task, TaskStatus.CANCELLED, now, cancel_requested=has_live)
        return task
