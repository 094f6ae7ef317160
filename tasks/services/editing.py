"""Editing a task's own fields: what its document is derived from.

The task document's derived part is refused on PUT (``derived_document``); this is the
place to change it. Used by the admin's task form; ``PATCH /api/tasks/{id}`` (issue 14)
is meant to call the same service.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from tasks import events
from tasks.context import task_document_sync
from tasks.errors import TaskClosed
from tasks.models import CLOSED_STATUSES, Task
from tasks.serializers import TaskRowOut
from tasks.services.leases import locked_task

EDITABLE = ("title", "prompt", "definition_of_done", "branch_scope")


def task_update(*, task: Task, user: Any, **changes: Any) -> Task:
    """Changes any of ``EDITABLE``; the task document is regenerated (its ``## Notes``
    kept) and a ``task.timeline`` entry of kind ``edited`` names the fields. A closed
    task is not edited (reopen it first). Nothing changed stores nothing."""
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise ValueError(f"not editable: {sorted(unknown)}")
    with transaction.atomic():
        task = locked_task(task)
        if task.status in CLOSED_STATUSES:
            raise TaskClosed(f"Task {task.public_id} is {task.status}; reopen it to edit it.")
        changed = [name for name, value in changes.items() if getattr(task, name) != value]
        if not changed:
            return task
        for name in changed:
            setattr(task, name, changes[name])
        task.updated_at = timezone.now()
        task.save(update_fields=[*changed, "updated_at"])
        events.timeline(
            task=task,
            kind="edited",
            actor=events.actor_user(user),
            summary="Task edited: " + ", ".join(changed),
            fields=changed,
        )
        events.activity(task=task, row=TaskRowOut(task).data)
        task_document_sync(task, user=user)
    return task
