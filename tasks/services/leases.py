"""Leases once granted: the guard every harness write passes, heartbeats, release.

Claims are in ``claims``, expiry in ``expiry``, the task row lock in ``state``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from api.errors import Forbidden
from tasks import events
from tasks.errors import AppRevoked, LeaseLost, NoLiveRun, TaskClosed
from tasks.models import (
    HarnessApp,
    Interrupt,
    MessageKind,
    Run,
    RunStatus,
    Task,
    TaskMessage,
    TaskStatus,
)
from tasks.services.expiry import lease_settle, settled_on_refusal
from tasks.services.messages import messages_take
from tasks.services.state import (
    ALL_RELATED,
    TaskRef,
    lease_length,
    locked_task,
    set_task_status,
    withdraw_questions,
)


@dataclass(frozen=True)
class Guarded:
    task: Task
    run: Run
    now: datetime


def guard_write(
    *,
    app: HarnessApp,
    task: Task | TaskRef,
    run_id: str,
    lease_epoch: int | None,
    allow_cancelled: bool = False,
    related: tuple[str, ...] = ALL_RELATED,
    **annotations: Any,
) -> Guarded:
    """The rule every harness write passes, inside the caller's transaction.

    A stale run can never write: it must be this task's live run, held by this app, with
    an unexpired lease and (when sent) the current epoch. The app is read again with the
    run, after the lock: the key that authenticated the request may come from a cache
    (tasks.harnesses.auth) and been revoked or rotated since.
    """
    task = locked_task(task, related=related, **annotations)
    now = timezone.now()  # after the lock wait, which may have taken seconds
    run = (
        Run.objects.select_for_update(of=("self",))
        .select_related("app")
        .filter(task=task, public_id=run_id)
        .first()
    )
    if run is None:
        raise LeaseLost(f"{run_id} is not a run of this task.")
    if run.app_id != app.pk:
        raise Forbidden(f"{run_id} belongs to another harness app.")
    if run.app.revoked_at is not None or run.app.key_hash != app.key_hash:
        raise AppRevoked("This harness key was revoked.")
    if task.status == TaskStatus.CANCELLED and not (
        allow_cancelled and run.status == RunStatus.LIVE
    ):
        raise TaskClosed("The task was cancelled.")
    if run.status != RunStatus.LIVE:
        raise LeaseLost(f"{run_id} is {run.status}; claim the task again.")
    if run.lease_expires_at <= now:
        raise LeaseLost(
            f"The lease of {run_id} expired at {events.iso(run.lease_expires_at)}; claim again."
        )
    if lease_epoch is not None and lease_epoch != run.lease_epoch:
        raise LeaseLost(
            f"lease_epoch {lease_epoch} is stale; the current epoch is {run.lease_epoch}."
        )
    if task.is_closed and task.status != TaskStatus.CANCELLED:
        raise TaskClosed(f"The task is {task.status}.")
    return Guarded(task=task, run=run, now=now)


@dataclass(frozen=True)
class Beat:
    run: Run
    task: Task
    cancel_requested: bool
    messages: list[TaskMessage] = field(default_factory=list)
    has_answers: bool = True  # False: the task has no answered question to show


def lease_heartbeat(
    *,
    app: HarnessApp,
    task: Task | TaskRef,
    run_id: str,
    lease_epoch: int | None,
    checkpoint: dict[str, Any] | None,
) -> Beat:
    """Extends the lease by its length; a cancelled task instead ends the run here."""
    with settled_on_refusal(task), transaction.atomic():
        g = guard_write(
            app=app,
            task=task,
            run_id=run_id,
            lease_epoch=lease_epoch,
            allow_cancelled=True,
            related=("org",),  # a beat renders no grid row
            # Asked in the lock's statement: most beats have no message to take and no
            # answer to show, and then read nothing more (issue 18: 4 queries a beat).
            waiting_messages=Exists(
                TaskMessage.objects.filter(
                    task=OuterRef("pk"), kind=MessageKind.MESSAGE, delivered_at__isnull=True
                )
            ),
            has_answers=Exists(
                Interrupt.objects.filter(task=OuterRef("pk"), answered_at__isnull=False)
            ),
        )
        run, task = g.run, g.task
        if task.status == TaskStatus.CANCELLED:
            Run.objects.filter(pk=run.pk).update(
                status=RunStatus.RELEASED, ended_at=g.now, end_reason="cancelled"
            )
            run.refresh_from_db()
            run.app = app
            events.timeline(
                task=task,
                kind="cancel_acknowledged",
                actor=events.actor_app(app),
                summary=f"{app.app_id} saw the cancellation and stopped",
                run_id=run.public_id,
            )
            return Beat(run=run, task=task, cancel_requested=True)
        run.lease_expires_at = g.now + lease_length()
        fields = ["lease_expires_at"]
        if checkpoint is not None:
            run.checkpoint = checkpoint
            run.checkpoint_at = g.now
            fields += ["checkpoint", "checkpoint_at"]
        run.save(update_fields=fields)
        # Taken under the task row lock the guard holds: each message reaches one beat.
        messages = messages_take(task=task, run=run, now=g.now) if task.waiting_messages else []
        return Beat(
            run=run,
            task=task,
            cancel_requested=task.cancel_requested,
            messages=messages,
            has_answers=task.has_answers,
        )


def lease_release(*, task: Task, user: Any) -> Run:
    """A person ends a stuck live run; it is fenced like an expired one, and the task is
    ready again. A question the run had asked is withdrawn with it."""
    lease_settle(task_pk=task.pk)
    with transaction.atomic():
        task = locked_task(task)
        now = timezone.now()
        if task.is_closed:
            raise TaskClosed(f"The task is {task.status}.")
        run = (
            Run.objects.select_for_update(of=("self",))
            .select_related("app")
            .filter(task=task, status=RunStatus.LIVE)
            .first()
        )
        if run is None:
            raise NoLiveRun("The task has no live run to release.")
        Run.objects.filter(pk=run.pk).update(
            status=RunStatus.RELEASED, ended_at=now, end_reason="released", released_by=user
        )
        run.refresh_from_db()
        events.timeline(
            task=task,
            kind="release",
            actor=events.actor_user(user),
            summary=f"{user.get_username()} released the lease of {run.app.app_id}",
            run_id=run.public_id,
            app_id=run.app.app_id,
        )
        withdraw_questions(task=task, now=now, run=run)
        set_task_status(task, TaskStatus.READY, now)
        return run
