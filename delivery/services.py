"""Delivery writes. A submitted result is judged here before ``tasks`` stores it, and every
stored result gets its delivery payload in the same transaction."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import Max

from delivery.compose import compose
from delivery.judge import check_artifact
from delivery.models import Delivery
from delivery.selectors import delivery_get
from tasks import events
from tasks.models import HarnessApp, Result, Task
from tasks.services import result_submit
from tasks.services.results import Submitted


def delivery_result_submit(*, app: HarnessApp, task: Task, **fields: Any) -> Submitted:
    """Ends the run with its result; a submitted PR must be in the task's scope.

    The payload is composed by ``delivery_record`` inside the result's transaction, so a
    refused or rolled-back result leaves no delivery and no event, and a replayed result
    (which ``result_submit`` answers before storing anything) makes no second one.
    """
    return result_submit(
        app=app, task=task, check_artifact=check_artifact, on_stored=delivery_record, **fields
    )


def delivery_record(result: Result) -> Delivery:
    """Persists the result's payload as the task's next version and announces it.

    Runs under the task row lock that ``result_submit`` holds, so two results of one task
    cannot both read the same highest version.
    """
    task = result.task
    latest = Delivery.objects.filter(task=task).aggregate(v=Max("version"))["v"] or 0
    blocks = compose(result)
    delivery = Delivery.objects.create(
        task=task,
        run=result.run,
        status=result.status,
        version=latest + 1,
        blocks=blocks,
        created_at=result.created_at,
    )
    events.delivered(
        task=task,
        status=result.status,
        run_id=result.run.public_id,
        version=delivery.version,
        blocks=blocks,
    )
    return delivery


def delivery_feedback(*, task: Task, user: Any, rating: str, comment: str = "") -> Delivery:
    """A person's rating of the task's newest delivery, kept as a ``feedback`` timeline
    entry (the event log is the record; there is nothing else to update)."""
    with transaction.atomic():
        delivery = delivery_get(task=task)
        events.timeline(
            task=task,
            kind="feedback",
            actor=events.actor_user(user),
            summary=f"Rated delivery v{delivery.version} {rating}"
            + (f": {comment}" if comment else ""),
            version=delivery.version,
            rating=rating,
            comment=comment,
        )
        return delivery
