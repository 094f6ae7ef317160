"""Claims: a harness app takes a task's lease, by id (``lease_claim``) or the oldest
ready task it may take (``lease_claim_next``)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from api import metrics
from tasks import events
from tasks.errors import AppRevoked, LeaseHeld, LeaseLost, TaskAssigned, TaskClosed, TaskPaused
from tasks.models import CLAIMABLE_STATUSES, HarnessApp, Run, RunStatus, Task, TaskStatus
from tasks.selectors import claimable_tasks
from tasks.serializers.outputs import TaskRowOut
from tasks.services.expiry import expire_run, leases_sweep
from tasks.services.state import lease_length, locked_task, locked_task_pk

# How many candidates one claim-next looks at before it answers "nothing": each one it
# loses (another caller got there first) costs a transaction.
CLAIM_NEXT_TRIES = 8


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


def _grant(app: HarnessApp, task: Task, *, only_ready: bool) -> Claim:
    """Grants the lease of a task whose row this transaction has locked.

    ``only_ready`` (claim-next) takes a ready task or nothing: a task that is no longer
    ready was granted to someone else, and must not be renewed for a second caller of
    the same app as a by-id claim would.
    """
    now = timezone.now()  # after the lock wait, which may have taken seconds
    if task.assigned_app_id is not None and task.assigned_app_id != app.pk:
        raise TaskAssigned(
            f"The task is assigned to harness app {task.assigned_app.app_id!r}.",
            extra={"assigned_app_id": task.assigned_app.app_id},
        )
    if task.status == TaskStatus.PAUSED:
        raise TaskPaused("The task is paused on a question; it can be claimed once answered.")
    if task.is_closed:
        raise TaskClosed(f"The task is {task.status}.")
    if only_ready and task.status != TaskStatus.READY:
        raise LeaseLost("Another claim won the race; claim again.")
    live = (
        Run.objects.select_for_update(of=("self",))
        .select_related("app")
        .filter(task=task, status=RunStatus.LIVE)
        .first()
    )
    renew = None
    if live is not None and live.lease_expires_at > now:
        if live.app_id != app.pk or only_ready:
            raise _lease_held(live, now)
        renew = live
    elif live is not None:
        expire_run(live, task, now)
    statuses = [TaskStatus.READY] if only_ready else CLAIMABLE_STATUSES
    won = Task.objects.filter(pk=task.pk, lease_epoch=task.lease_epoch, status__in=statuses).update(
        lease_epoch=F("lease_epoch") + 1, status=TaskStatus.IN_PROGRESS, updated_at=now
    )
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
    metrics.count_on_commit(metrics.CLAIMS.inc)
    return Claim(run=run, task=task, renewed=renew is not None)


def lease_claim(*, app: HarnessApp, task: Task) -> Claim:
    """Grants the task's lease to ``app``.

    A task assigned to another app is 409 ``task_assigned``; a live lease of another app
    is 409 ``lease_held``; the same app gets its own run back with a bumped epoch; an
    expired lease is no lease, so its run is marked expired and a new run starts. The
    winner is decided by one conditional UPDATE on the task's epoch, and the partial
    unique index on live runs makes a second live run impossible even if that were wrong.
    """
    with transaction.atomic():
        _hold_unrevoked(app)
        return _grant(app, locked_task(task), only_ready=False)


def lease_claim_next(*, app: HarnessApp) -> Claim | None:
    """Grants the oldest ready task ``app`` may take (unassigned or assigned to it), or
    None when there is none.

    Each try is one transaction that picks the oldest candidate and grants it. On
    Postgres the pick is ``FOR UPDATE SKIP LOCKED``: racing callers take different rows
    instead of queueing on one; on SQLite the transaction holds the one write lock from
    its ``BEGIN IMMEDIATE``, so picks are serial. Either way the grant is the same
    conditional UPDATE as a claim by id, now only from ``ready``, so a task is granted
    once however many callers race; a candidate lost to one of them is skipped.
    """
    leases_sweep(org_id=app.org_id)  # an overdue lease makes its task ready again
    lost: list[int] = []
    for _ in range(CLAIM_NEXT_TRIES):
        pick = None
        # A plain read first: most looks of a waiting caller find nothing, and on SQLite
        # the transaction below takes the one write lock at BEGIN.
        if not claimable_tasks(app).exclude(pk__in=lost).exists():
            return None
        try:
            with transaction.atomic():
                _hold_unrevoked(app)
                candidates = claimable_tasks(app).exclude(pk__in=lost)
                if connection.vendor == "postgresql":
                    candidates = candidates.select_for_update(of=("self",), skip_locked=True)
                pick = candidates.values_list("pk", flat=True).first()
                if pick is None:
                    return None
                return _grant(app, locked_task_pk(pick), only_ready=True)
        except (LeaseHeld, LeaseLost, TaskAssigned, TaskPaused, TaskClosed):
            if pick is not None:
                lost.append(pick)
    return None
