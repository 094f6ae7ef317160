"""Feedback and messages: what a person tells the harness outside a question
(docs/contract.md §6, docs/api.md "Feedback and messages").

Feedback is given on reopen and reaches every later bundle of the task. A message is
sent to a task in progress and reaches the live run's next heartbeat, exactly once:
``messages_take`` runs inside the heartbeat's transaction, after the guard has locked
the task row, so two heartbeats of one task queue on that lock and the second finds
nothing left to take. The heartbeat's answer, messages included, is stored under its
Idempotency-Key in the same transaction, so a harness whose response was lost retries
with the same key and gets the same messages again, while a new heartbeat never does.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tasks import events
from tasks.context import task_document_sync
from tasks.models import MessageKind, Run, RunStatus, Task, TaskMessage
from tasks.webhooks import outbox


def message_record(*, task: Task, user: Any, kind: str, text: str) -> TaskMessage:
    """Stores feedback or a message with its timeline entry and rewrites the task document,
    inside the caller's transaction (which holds the task row)."""
    message = TaskMessage.objects.create(task=task, kind=kind, text=text, author=user)
    if kind == MessageKind.MESSAGE:
        events.timeline(
            task=task,
            kind="message",
            actor=events.actor_user(user),
            summary=text,
            message_id=message.public_id,
        )
    task_document_sync(task, user=user)
    _announce(task=task, message=message)
    return message


def _announce(*, task: Task, message: TaskMessage) -> None:
    """The webhooks (docs/webhooks.md): feedback to the apps that may claim the reopened
    task, a message to the app whose run is live; written in the same transaction."""
    data: dict[str, Any] = {"message_id": message.public_id, "text": message.text}
    if message.kind == MessageKind.FEEDBACK:
        outbox.webhook_enqueue(
            apps=outbox.apps_that_may_claim(task), kind=outbox.FEEDBACK, task=task, data=data
        )
        return
    run = (
        Run.objects.select_related("app", "app__webhook")
        .filter(task=task, status=RunStatus.LIVE)
        .first()
    )
    if run is not None:
        outbox.webhook_enqueue(
            apps=[run.app], kind=outbox.MESSAGE, task=task, data={**data, "run_id": run.public_id}
        )


def messages_take(*, task: Task, run: Run, now: datetime) -> list[TaskMessage]:
    """The task's messages no heartbeat has taken yet, oldest first, now taken by ``run``.

    Must run in the heartbeat's transaction with the task row locked (see the module)."""
    waiting = list(
        TaskMessage.objects.select_related("author")
        .filter(task=task, kind=MessageKind.MESSAGE, delivered_at__isnull=True)
        .order_by("pk")
    )
    if waiting:
        TaskMessage.objects.filter(pk__in=[m.pk for m in waiting]).update(
            delivered_at=now, delivered_run=run
        )
        for message in waiting:
            message.delivered_at, message.delivered_run = now, run
    return waiting
