"""Leases: claim, heartbeat, expiry, release, and the guard every harness write passes.

Lock order is always task row, then run row, so two writers on one task cannot deadlock
on Postgres. On SQLite ``select_for_update`` is a no-op, but every transaction there is
``BEGIN IMMEDIATE`` and so already holds the database's single write lock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from api.errors import Forbidden
from tasks import events
from tasks.context import task_document_sync
from tasks.errors import AppRevoked, LeaseHeld, LeaseLost, NoLiveRun, TaskClosed, TaskPaused
from tasks.models import (
    CLAIMABLE_STATUSES,
    HarnessApp,
    Interrupt,
    Run,
    RunStatus,
    Task,
    TaskMessage,
    TaskStatus,
)
from tasks.serializers import TaskRowOut
from tasks.services.messages import messages_take


def lease_length() -> timedelta:
    return timedelta(seconds=settings.ETHER_LEASE_SECONDS)


def set_task_status(task: Task, status: str, now: datetime, **fields: Any) -> None:
    """Saves a status change and, when the status really changed, tells the task grid."""
    changed = task.status != status
    task.status = status
    task.updated_at = now
    for name, value in fields.items():
        setattr(task, name, value)
    task.save(update_fields=["status", "updated_at", *fields])
    if changed:
        events.activity(task=task, row=TaskRowOut(task).data)


def _expire(run: Run, task: Task, now: datetime) -> bool:
    """Marks a run expired exactly once; the conditional update decides who records it."""
    changed = Run.objects.filter(pk=run.pk, status=RunStatus.LIVE).update(
        status=RunStatus.EXPIRED, ended_at=now, end_reason="expired"
    )
    if not changed:
        return False
    run.status = RunStatus.EXPIRED
    events.timeline(
        task=task,
        kind="lease_expired",
        actor=events.SYSTEM,
        summary=f"Lease of {run.app.app_id} expired",
        run_id=run.public_id,
        app_id=run.app.app_id,
        lease_expires_at=events.iso(run.lease_expires_at),
    )
    # A paused task keeps waiting for its answer; only work in progress goes back to ready.
    if task.status == TaskStatus.IN_PROGRESS:
        set_task_status(task, TaskStatus.READY, now)
    return True


def withdraw_questions(*, task: Task, now: datetime, run: Run | None = None) -> int:
    """Closes the task's open question unanswered: its run ended or the task was cancelled."""
    questions = Interrupt.objects.filter(task=task).open()
    if run is not None:
        questions = questions.filter(run=run)
    withdrawn = questions.update(withdrawn_at=now)
    if withdrawn:
        task_document_sync(task)
    return withdrawn


def lease_settle(*, task_pk: int) -> bool:
    """Records the expiry of the task's live run if its lease has run out (lazily, on access)."""
    now = timezone.now()
    if not Run.objects.due(now).filter(task_id=task_pk).exists():
        return False
    with transaction.atomic():
        task = locked_task_pk(task_pk)
        run = (
            Run.objects.select_for_update(of=("self",))
            .select_related("app")
            .due(now)
            .filter(task=task)
            .first()
        )
        return run is not None and _expire(run, task, now)


def leases_sweep() -> int:
    """Expires every overdue lease; what ``sweep_leases`` runs on its interval."""
    task_pks = list(
        Run.objects.due(timezone.now()).values_list("task_id", flat=True).order_by("task_id")
    )
    return sum(1 for pk in task_pks if lease_settle(task_pk=pk))


def locked_task_pk(task_pk: int) -> Task:
    """The task row, locked for the rest of the transaction (every writer takes it first)."""
    return (
        Task.objects.select_for_update(of=("self",))
        .select_related("org", "project", "repo", "owner")
        .get(pk=task_pk)
    )


def locked_task(task: Task) -> Task:
    return locked_task_pk(task.pk)


@dataclass(frozen=True)
class Claim:
    run: Run
    task: Task
    renewed: bool


def _lease_held(live: Run, now: datetime) -> LeaseHeld:
    seconds = (live.lease_expires_at - now).total_seconds()
    return LeaseHeld(
        f"Harness app {live.app.app_id!r} holds the lease until "
        f"{events.iso(live.lease_expires_at)}.",
        extra={
            "holder_app_id": live.app.app_id,
            "lease_expires_at": events.iso(live.lease_expires_at),
        },
        retry_after=max(1, math.ceil(seconds)),
    )


def _hold_unrevoked(app: HarnessApp) -> None:
    """The key was checked when the request came in, but a revoke may have committed
    since: its transaction ended the app's leases, and a claim granted after it would
    hold a lease nobody ends. Read again inside the claim's transaction. On Postgres the
    row is held FOR SHARE until the claim commits, so a revoke (an UPDATE of that row)
    waits for the claim and then ends its lease, while claims of one app do not queue on
    each other; on SQLite the transaction already holds the one write lock."""
    share = " FOR SHARE" if connection.vendor == "postgresql" else ""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT 1 FROM {HarnessApp._meta.db_table} WHERE id = %s AND revoked_at IS NULL"
            + share,
            [app.pk],
        )
        if cursor.fetchone() is None:
            raise AppRevoked("This harness key was revoked.")


def lease_claim(*, app: HarnessApp, task: Task) -> Claim:
    """Grants the task's lease to ``app``.

    A live lease of another app is 409; the same app gets its own run back with a bumped
    epoch; an expired lease is no lease, so its run is marked expired and a new run starts.
    The winner is decided by one conditional UPDATE on the task's epoch, and the partial
    unique index on live runs makes a second live run impossible even if that were wrong.
    """
    with transaction.atomic():
        _hold_unrevoked(app)
        task = locked_task(task)
        now = timezone.now()  # after the lock wait, which may have taken seconds
        if task.status == TaskStatus.PAUSED:
            raise TaskPaused("The task is paused on a question; it can be claimed once answered.")
        if task.is_closed:
            raise TaskClosed(f"The task is {task.status}.")
        live = (
            Run.objects.select_for_update(of=("self",))
            .select_related("app")
            .filter(task=task, status=RunStatus.LIVE)
            .first()
        )
        renew = None
        if live is not None and live.lease_expires_at > now:
            if live.app_id != app.pk:
                raise _lease_held(live, now)
            renew = live
        elif live is not None:
            _expire(live, task, now)
        won = Task.objects.filter(
            pk=task.pk, lease_epoch=task.lease_epoch, status__in=CLAIMABLE_STATUSES
        ).update(lease_epoch=F("lease_epoch") + 1, status=TaskStatus.IN_PROGRESS, updated_at=now)
        if not won:
            raise LeaseLost("Another claim won the race; claim again.")
        previous_status = task.status
        task.refresh_from_db()
        expires = now + lease_length()
        if renew is not None:
            Run.objects.filter(pk=renew.pk).update(
                lease_epoch=task.lease_epoch, lease_expires_at=expires
            )
            renew.refresh_from_db()
            run = renew
        else:
            try:
                with transaction.atomic():
                    run = Run.objects.create(
                        task=task,
                        app=app,
                        harness_id=app.harness_id,
                        lease_epoch=task.lease_epoch,
                        lease_expires_at=expires,
                        started_at=now,
                    )
            except IntegrityError:
                # Only reachable if the locks above were bypassed; the index still holds.
                raise LeaseLost("Another claim won the race; claim again.")
        run.app = app
        events.timeline(
            task=task,
            kind="reclaim" if renew else "claim",
            actor=events.actor_app(app),
            summary=f"{app.app_id} {'renewed' if renew else 'claimed'} the lease",
            run_id=run.public_id,
            app_id=app.app_id,
            lease_epoch=run.lease_epoch,
            lease_expires_at=events.iso(run.lease_expires_at),
        )
        if previous_status != task.status:
            events.activity(task=task, row=TaskRowOut(task).data)
        return Claim(run=run, task=task, renewed=renew is not None)


@dataclass(frozen=True)
class Guarded:
    task: Task
    run: Run
    now: datetime


def guard_write(
    *,
    app: HarnessApp,
    task: Task,
    run_id: str,
    lease_epoch: int | None,
    allow_cancelled: bool = False,
) -> Guarded:
    """The rule every harness write passes, inside the caller's transaction.

    A stale run can never write: it must be this task's live run, held by this app, with
    an unexpired lease and (when sent) the current epoch.
    """
    task = locked_task(task)
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


def lease_heartbeat(
    *,
    app: HarnessApp,
    task: Task,
    run_id: str,
    lease_epoch: int | None,
    checkpoint: dict[str, Any] | None,
) -> Beat:
    """Extends the lease by its length; a cancelled task instead ends the run here."""
    lease_settle(task_pk=task.pk)
    with transaction.atomic():
        g = guard_write(
            app=app, task=task, run_id=run_id, lease_epoch=lease_epoch, allow_cancelled=True
        )
        run, task = g.run, g.task
        if task.status == TaskStatus.CANCELLED:
            Run.objects.filter(pk=run.pk).update(
                status=RunStatus.RELEASED, ended_at=g.now, end_reason="cancelled"
            )
            run.refresh_from_db()
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
        messages = messages_take(task=task, run=run, now=g.now)
        return Beat(run=run, task=task, cancel_requested=task.cancel_requested, messages=messages)


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


def leases_end_for_revoked_app(*, app: HarnessApp) -> int:
    """Ends every live lease of a revoked app, inside the revoke's transaction.

    A revoked key can write nothing, so its live lease would only block every other app
    until it ran out. Each run is fenced like an expired one (status ``expired``, so a
    stale write is ``lease_lost``), with a ``lease_revoked`` timeline entry; work in
    progress goes back to ready and a paused task keeps waiting for its answer, as after
    an expiry. Task rows are locked in pk order, then each run, as every writer does.
    """
    now = timezone.now()
    ended = 0
    task_pks = Run.objects.live().filter(app=app).order_by("task_id").values_list("task_id")
    for (task_pk,) in task_pks:
        task = locked_task_pk(task_pk)
        run = (
            Run.objects.select_for_update(of=("self",))
            .select_related("app")
            .filter(task=task, app=app, status=RunStatus.LIVE)
            .first()
        )
        if run is None or not Run.objects.filter(pk=run.pk, status=RunStatus.LIVE).update(
            status=RunStatus.EXPIRED, ended_at=now, end_reason="app_revoked"
        ):
            continue  # settled by another writer meanwhile
        ended += 1
        events.timeline(
            task=task,
            kind="lease_revoked",
            actor=events.SYSTEM,
            summary=f"Lease of {app.app_id} ended: its key was revoked",
            run_id=run.public_id,
            app_id=app.app_id,
            lease_expires_at=events.iso(run.lease_expires_at),
        )
        if task.status == TaskStatus.IN_PROGRESS:
            set_task_status(task, TaskStatus.READY, now)
    return ended
