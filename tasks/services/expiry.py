"""Lease expiry: recorded lazily on access, swept on an interval, forced by a revoke."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from api import metrics
from api.errors import DomainError
from tasks import events
from tasks.models import HarnessApp, Run, RunStatus, Task, TaskStatus
from tasks.services.state import TaskRef, locked_task_pk, set_task_status


def expire_run(run: Run, task: Task, now: datetime) -> bool:
    """Marks a run expired exactly once; the conditional update decides who records it."""
    changed = Run.objects.filter(pk=run.pk, status=RunStatus.LIVE).update(
        status=RunStatus.EXPIRED, ended_at=now, end_reason="expired"
    )
    if not changed:
        return False
    run.status = RunStatus.EXPIRED
    metrics.count_on_commit(metrics.LEASE_EXPIRIES.inc)
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
        return run is not None and expire_run(run, task, now)


@contextmanager
def settled_on_refusal(task: Task | TaskRef) -> Iterator[None]:
    """Around a guarded write: if it is refused, record the lapse of the task's lease.

    Writes once called ``lease_settle`` first, a query each (issue 18). A write that
    succeeds needs no settling: it passed the guard, so the task's one live run is its own
    and unexpired. Only a refused write may have met a lapsed lease, and its transaction
    rolled back, so the expiry is recorded here, after, before the refusal is answered."""
    try:
        yield
    except DomainError:
        pk = task.pk
        if pk is None and isinstance(task, TaskRef):
            pk = (
                Task.objects.filter(org=task.org, public_id=task.public_id)
                .values_list("pk", flat=True)
                .first()
            )
        if pk is not None:
            lease_settle(task_pk=pk)
        raise


def leases_sweep(*, org_id: int | None = None) -> int:
    """Expires every overdue lease (of one org, when given); what ``sweep_leases`` runs on
    its interval, and claim-next before it looks for ready tasks."""
    due = Run.objects.due(timezone.now())
    if org_id is not None:
        due = due.filter(task__org_id=org_id)
    task_pks = list(due.values_list("task_id", flat=True).order_by("task_id"))
    return sum(1 for pk in task_pks if lease_settle(task_pk=pk))


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
