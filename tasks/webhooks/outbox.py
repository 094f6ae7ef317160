"""The outbox: webhook deliveries written in the transaction of the change they report.

``on_event`` is called by ``tasks.events.record`` for every event it persists, inside
that event's transaction, and turns the few events a harness must hear of into
deliveries; so a change that rolls back leaves no delivery behind, and one that commits
always leaves its deliveries (the sender sends them after commit). Other code (feedback,
messages: issue 15) calls ``webhook_enqueue`` itself, in its own transaction.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from django.db import connection
from django.utils import timezone

from api.public_url import public_origin
from api.rfc3339 import iso
from tasks.models import HarnessApp, Run, RunStatus, Task
from tasks.webhooks.models import WebhookDelivery, WebhookEndpoint

log = logging.getLogger(__name__)

READY = "task.ready"
ANSWERED = "task.answered"
CANCEL_REQUESTED = "task.cancel_requested"
FEEDBACK = "task.feedback"
MESSAGE = "task.message"
TEST = "webhook.test"
TYPES = (READY, ANSWERED, CANCEL_REQUESTED, FEEDBACK, MESSAGE, TEST)

# Event names of tasks.events, repeated here so this module does not import it (events
# imports this one).
_ACTIVITY = "activity.list_updated"
_TIMELINE = "task.timeline"


def public_base_url() -> str:
    """The base of every absolute URL in a webhook payload: ``ETHER_PUBLIC_URL``, else the
    local default (``make run``'s address on its default port; set ETHER_PUBLIC_URL for
    another). Payloads are built without a request, so never from a ``Host`` header."""
    return public_origin()


def task_links(task: Task) -> dict[str, str]:
    base = f"{public_base_url()}/api/harness/tasks/{task.public_id}"
    return {"execution_url": f"{base}/execution", "claim_url": f"{base}/claim"}


def apps_that_may_claim(task: Task) -> list[HarnessApp]:
    """The apps a ``task.ready`` goes to: the org's unrevoked apps with webhooks on that may
    claim the task (unassigned: all of them; assigned: that app only)."""
    apps = (
        HarnessApp.objects.filter(
            org_id=task.org_id, revoked_at__isnull=True, webhook__isnull=False
        )
        .exclude(webhook__url="")
        .exclude(webhook__secret="")
    )
    assigned = getattr(task, "assigned_app_id", None)  # issue 14's assignment, once merged
    if assigned is not None:
        apps = apps.filter(pk=assigned)
    return list(apps.order_by("pk"))


def _enabled(app: HarnessApp) -> bool:
    if app.revoked_at is not None:
        return False
    try:
        endpoint = app.webhook
    except WebhookEndpoint.DoesNotExist:
        return False
    return endpoint.enabled


def body_text(kind: str, data: Mapping[str, Any], at: Any = None) -> str:
    """The exact JSON text a delivery sends: ``{"type", "timestamp", "data"}``."""
    body = {"type": kind, "timestamp": iso(at or timezone.now()), "data": dict(data)}
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False, default=str)


def webhook_enqueue(
    *,
    apps: Iterable[HarnessApp],
    kind: str,
    task: Task | None,
    data: Mapping[str, Any],
) -> list[WebhookDelivery]:
    """Writes one delivery of ``kind`` per app with webhooks on, inside the caller's
    transaction. ``data`` gets ``task_id`` and the task's links when there is a task."""
    if kind not in TYPES:
        raise ValueError(f"unknown webhook type {kind!r}")
    if not connection.in_atomic_block:
        raise RuntimeError("webhook_enqueue must run inside the transaction of its change")
    targets = [app for app in apps if _enabled(app)]
    if not targets:
        return []
    payload: dict[str, Any] = {}
    if task is not None:
        payload = {"task_id": task.public_id, **task_links(task)}
    payload.update(data)
    now = timezone.now()
    text = body_text(kind, payload, now)
    return WebhookDelivery.objects.bulk_create(
        [
            WebhookDelivery(app=app, task=task, type=kind, body=text, created_at=now)
            for app in targets
        ]
    )


def task_ready(task: Task) -> list[WebhookDelivery]:
    """``task.ready`` to every app that may claim the task now."""
    apps = HarnessApp.objects.filter(pk__in=[a.pk for a in apps_that_may_claim(task)])
    return webhook_enqueue(
        apps=apps.select_related("webhook"),
        kind=READY,
        task=task,
        data={
            "title": task.title,
            "status": task.status,
            "assigned_app_id": _assigned_app_id(task),
        },
    )


def _assigned_app_id(task: Task) -> str | None:
    app = getattr(task, "assigned_app", None)
    return getattr(app, "app_id", None)


def _run_app(task: Task, *, run_id: str | None = None) -> tuple[Run | None, list[HarnessApp]]:
    runs = Run.objects.select_related("app", "app__webhook").filter(task=task)
    run = (
        runs.filter(public_id=run_id).first()
        if run_id
        else runs.filter(status=RunStatus.LIVE).first()
    )
    return run, ([run.app] if run is not None else [])


def _previous_status(event: Any) -> str | None:
    """The status the task grid showed for this task before ``event``."""
    previous = (
        type(event)
        .objects.filter(task_id=event.task_id, topic=event.topic, name=_ACTIVITY)
        .exclude(pk=event.pk)
        .order_by("-pk")
        .values_list("payload", flat=True)
        .first()
    )
    return previous.get("status") if isinstance(previous, dict) else None


def on_event(event: Any) -> None:
    """Deliveries for one persisted event (called by ``tasks.events.record``).

    - the task grid shows a task newly ``ready`` (created, reopened, released, its lease
      expired or its key revoked while in progress, answered after its lease expired) →
      ``task.ready`` to the apps that may claim it;
    - an ``answer`` timeline entry → ``task.answered`` to the app whose run asked;
    - a ``cancel`` timeline entry while a run is live → ``task.cancel_requested`` to it.
    """
    task = event.task
    if task is None:
        return
    payload = event.payload
    if event.name == _ACTIVITY:
        if payload.get("status") == "ready" and _previous_status(event) != "ready":
            task_ready(task)
        return
    if event.name != _TIMELINE:
        return
    kind = payload.get("kind")
    if kind == "answer":
        run, apps = _run_app(task, run_id=payload.get("run_id"))
        webhook_enqueue(
            apps=apps,
            kind=ANSWERED,
            task=task,
            data={
                "run_id": run.public_id if run else None,
                "interrupt_id": payload.get("interrupt_id"),
                "answer": payload.get("summary"),
            },
        )
    elif kind == "cancel":
        run, apps = _run_app(task)
        if run is not None:
            webhook_enqueue(
                apps=apps, kind=CANCEL_REQUESTED, task=task, data={"run_id": run.public_id}
            )
