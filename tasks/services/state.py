"""What every task write shares: the task row lock, status changes, withdrawn questions.

Lock order is always task row, then run row, so two writers on one task cannot deadlock
on Postgres. On SQLite ``select_for_update`` is a no-op, but every transaction there is
``BEGIN IMMEDIATE`` and so already holds the database's single write lock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings

from accounts.models import Org
from api.errors import NotFound
from api.ids import is_public_id
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


@dataclass(frozen=True)
class TaskRef:
    """A task named by a request (its org and public id) and not read yet: the write's
    row lock is then its only read of the task (a step's first read was once a plain
    SELECT of the row it locked right after, issue 18)."""

    org: Org
    public_id: str

    @property
    def pk(self) -> None:
        return None


# What a write may render of its task (the grid row: project, repo, owner, assigned app).
ALL_RELATED = ("org", "project", "repo", "owner", "assigned_app")


def _locking(related: tuple[str, ...]) -> Any:
    return Task.objects.select_for_update(of=("self",)).select_related(*related)


def locked_task_pk(
    task_pk: int, *, related: tuple[str, ...] = ALL_RELATED, **annotations: Any
) -> Task:
    """The task row, locked for the rest of the transaction (every writer takes it first).
    ``annotations`` ride along in the same statement (a heartbeat's "anything waiting?");
    ``related``: the rows joined in (a step needs only the org: four joins fewer to build
    and run on the hottest path, issue 18)."""
    return _locking(related).annotate(**annotations).get(pk=task_pk)


def locked_task(
    task: Task | TaskRef, *, related: tuple[str, ...] = ALL_RELATED, **annotations: Any
) -> Task:
    if isinstance(task, TaskRef):
        if not is_public_id(task.public_id, "task"):
            raise NotFound(f"No task {task.public_id!r}.")
        found = (
            _locking(related)
            .annotate(**annotations)
            .filter(org=task.org, public_id=task.public_id)
            .first()
        )
        if found is None:
            raise NotFound(f"No task {task.public_id!r}.")
        return found
    return locked_task_pk(task.pk, related=related, **annotations)
