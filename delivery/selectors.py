"""Reads of delivery payloads for the product API."""

from __future__ import annotations

from typing import Any

from api.errors import NotFound
from api.rfc3339 import iso
from delivery.models import Delivery
from tasks.models import Task


def delivery_get(*, task: Task, version: int | None = None) -> Delivery:
    """The task's newest delivery, or the one of ``version``; NotFound when there is none."""
    rows = Delivery.objects.select_related("task", "run").filter(task=task)
    row = rows.filter(version=version).first() if version else rows.order_by("-version").first()
    if row is None:
        which = f"version {version}" if version else "delivery yet"
        raise NotFound(f"Task {task.public_id} has no {which}.")
    return row


def delivery_body(delivery: Delivery) -> dict[str, Any]:
    latest = Delivery.objects.filter(task=delivery.task).order_by("-version").first()
    return {
        "id": delivery.public_id,
        "task_id": delivery.task.public_id,
        "run_id": delivery.run.public_id,
        "status": delivery.status,
        "version": delivery.version,
        "latest_version": latest.version if latest else delivery.version,
        "created_at": iso(delivery.created_at),
        "blocks": delivery.blocks,
    }
