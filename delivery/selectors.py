"""Reads of delivery payloads for the product API."""

from __future__ import annotations

from django.db.models import OuterRef, Subquery

from api.errors import NotFound
from delivery.models import Delivery
from tasks.models import Task


def delivery_get(*, task: Task, version: int | None = None) -> Delivery:
    """The task's newest delivery, or the one of ``version``; NotFound when there is none.
    It carries ``latest_version``, the task's newest version (``DeliveryOut``)."""
    newest = Delivery.objects.filter(task=OuterRef("task")).order_by("-version").values("version")
    rows = (
        Delivery.objects.select_related("task", "run")
        .filter(task=task)
        .annotate(latest_version=Subquery(newest[:1]))
    )
    row = rows.filter(version=version).first() if version else rows.order_by("-version").first()
    if row is None:
        which = f"version {version}" if version else "delivery yet"
        raise NotFound(f"Task {task.public_id} has no {which}.")
    return row
