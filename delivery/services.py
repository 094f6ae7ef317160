"""Delivery writes. A submitted result is judged here before ``tasks`` stores it, and every
stored result gets its delivery payload in the same transaction."""

from __future__ import annotations

from functools import partial
from typing import Any

from django.db import transaction
from django.db.models import Max

from api import metrics
from corpus.rendering import Renders
from delivery.compose import compose, summary_markdown
from delivery.judge import check_artifact
from delivery.models import Delivery
from delivery.selectors import delivery_get
from delivery.verification.services import verification_schedule
from tasks import events
from tasks.models import HarnessApp, Result, Task
from tasks.services import result_submit
from tasks.services.results import Submitted


def delivery_result_submit(
    *, app: HarnessApp, task: Task, renders: Renders | None = None, **fields: Any
) -> Submitted:
    """Ends the run with its result; a submitted PR must be in the task's scope.

    The payload is composed by ``delivery_record`` inside the result's transaction, so a
    refused or rolled-back result leaves no delivery and no event, and a replayed result
    (which ``result_submit`` answers before storing anything) makes no second one. Its
    summary is rendered first, before that transaction opens (with an Idempotency-Key
    the view has done it in ``prepare_idempotent``: ``renders``), and a summary past
    ``ETHER_MAX_RENDER_BYTES`` is refused (413) before anything is stored.
    """
    renders = renders if renders is not None else Renders()
    summary = summary_markdown(
        status=fields.get("status", ""),
        working_summary=fields.get("working_summary", ""),
        agent_status=fields.get("agent_status", ""),
        no_changes_reason=fields.get("no_changes_reason", ""),
    )
    if summary is not None:
        renders.render(summary)
    return result_submit(
        app=app,
        task=task,
        check_artifact=check_artifact,
        on_stored=partial(delivery_record, renders=renders),
        **fields,
    )


def delivery_record(result: Result, *, renders: Renders | None = None) -> Delivery:
    """Persists the result's payload as the task's next version and announces it.

    Runs under the task row lock that ``result_submit`` holds, so two results of one task
    cannot both read the same highest version.
    """
    task = result.task
    latest = Delivery.objects.filter(task=task).aggregate(v=Max("version"))["v"] or 0
    blocks = compose(result, renders=renders)
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
    metrics.count_on_commit(metrics.DELIVERIES.inc)
    if any(b["type"] == "checks" and b["state"] == "pending" for b in blocks):
        verification_schedule(delivery)
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
