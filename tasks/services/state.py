"""What every task write shares: the task row lock, status changes, withdrawn questions.

Lock order is always task row, then run row, so two writers on one task cannot deadlock
on Postgres. On SQLite ``select_for_update`` is a no-op, but every transaction there is
``BEGIN IMMEDIATE`` and so already holds the database's single write lock.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings

from tasks import events
from tasks.context import task_document_sync
from tasks.models import Interrupt, Run, Task, TaskStatus
from tasks.serializers.outputs import TaskRowOut


def lease_length() -> timedelta:
    return timedelta(seconds=settings.ETHER_LEASE_SECONDS)


def set_task_status(task: Task, status: str, now: datetime, **fields: Any) -> None:
    """Saves a status change and, when the status really changed, tells the task grid
    and (for ``ready``) the org's waiting claim-next callers."""
    changed = task.status != status
    task.status = status
    task.updated_at = now
    for name, value in fields.items():
        setattr(task, name, value)
    task.save(update_fields=["status", "updated_at", *fields])
    if changed:
        events.activity(task=task, row=TaskRowOut(task).data)
        if status == TaskStatus.READY:
            events.task_ready(task=task)


def withdraw_questions(*, task: Task, now: datetime, run: Run | None = None) -> int:
    """Closes the task's open question unanswered: its run ended or the task was cancelled."""
    questions = Interrupt.objects.filter(task=task).open()
    if run is not None:
        questions = questions.filter(run=run)
    withdrawn = questions.update(withdrawn_at=now)
    if withdrawn:
        task_document_sync(task)
    return withdrawn


def locked_task_pk(task_pk: int) -> Task:
    """The task row, locked for the rest of the transaction (every writer takes it first)."""
    return (
        Task.objects.select_for_update(of=("self",))
        .select_related("org", "project", "repo", "owner", "assigned_app")
        .get(pk=task_pk)
    )


def locked_task(task: Task) -> Task:
    return locked_task_pk(task.pk)
