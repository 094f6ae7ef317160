"""Retention: rows past their use are deleted by the sweeper, a small batch at a time.

Each app registers what it keeps for a while (``register_purge``) in its
``AppConfig.ready``; ``manage.py sweep_leases`` calls ``purge_expired`` every
``ETHER_RETENTION_INTERVAL`` seconds. Registered today:

- ``idempotency`` (api): stored answers older than ``ETHER_IDEMPOTENCY_TTL_SECONDS``;
- ``worker_heartbeats`` (api): workers not seen for ``ETHER_RETENTION_DAYS``;
- ``realtime_tickets`` (tasks): tickets spent or expired (a deleted ticket is refused
  like a spent one: unknown);
- ``webhook_attempts``: registered by the app that owns the webhook models, with the
  one call shown in ``tasks/apps.py`` (attempts older than ``ETHER_RETENTION_DAYS``).

The event log, documents and their versions, runs, results and deliveries are the
record and are never purged.

Each batch is one short transaction deleting at most ``ETHER_RETENTION_BATCH`` rows by
primary key, so no write lock is held for long: on SQLite the single write lock is
given back between batches, and harness writes queued on the busy timeout go first.
A tick deletes at most ``MAX_BATCHES_PER_TICK`` batches of each kind; a backlog is
worked off over the next ticks rather than starving the lease sweep.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, models, transaction
from django.utils import timezone

from api import metrics

log = logging.getLogger(__name__)

MAX_BATCHES_PER_TICK = 20

# kind -> a function of "now" returning the rows to delete.
Purge = Callable[[datetime], "models.QuerySet[models.Model]"]
_purges: dict[str, Purge] = {}


def register_purge(kind: str, select: Purge) -> None:
    _purges[kind] = select


def registered_purges() -> dict[str, Purge]:
    return dict(_purges)


def retention_cutoff(now: datetime) -> datetime:
    return now - timedelta(days=settings.ETHER_RETENTION_DAYS)


def delete_in_batches(
    rows: models.QuerySet[models.Model], *, batch: int, max_batches: int | None = None
) -> int:
    """Deletes ``rows`` ``batch`` at a time, each batch its own transaction; returns how
    many rows of ``rows``' model went (cascades not counted)."""
    model = rows.model
    total = 0
    batches = 0
    while max_batches is None or batches < max_batches:
        pks = list(rows.order_by("pk").values_list("pk", flat=True)[:batch])
        if not pks:
            break
        with transaction.atomic():
            _, per_model = model.objects.filter(pk__in=pks).delete()
        total += per_model.get(model._meta.label, 0)
        batches += 1
        if len(pks) < batch:
            break
    return total


def purge_expired(now: datetime | None = None) -> dict[str, int]:
    """One retention pass over every registered kind: ``{kind: rows deleted}``. A kind
    that fails (a locked database) is logged and retried on the next pass."""
    now = now or timezone.now()
    deleted: dict[str, int] = {}
    for kind, select in registered_purges().items():
        try:
            count = delete_in_batches(
                select(now), batch=settings.ETHER_RETENTION_BATCH, max_batches=MAX_BATCHES_PER_TICK
            )
        except DatabaseError:
            log.exception("retention of %s failed; retrying on the next pass", kind)
            continue
        deleted[kind] = count
        if count:
            metrics.RETENTION_DELETED.labels(kind).inc(count)
    return deleted


def _idempotency_expired(now: datetime) -> models.QuerySet[models.Model]:
    from api.models import IdempotencyRecord

    ttl = timedelta(seconds=settings.ETHER_IDEMPOTENCY_TTL_SECONDS)
    return IdempotencyRecord.objects.filter(created_at__lt=now - ttl)


def _heartbeats_gone(now: datetime) -> models.QuerySet[models.Model]:
    from api.models import WorkerHeartbeat

    return WorkerHeartbeat.objects.filter(beat_at__lt=retention_cutoff(now))


def register_api_purges() -> None:
    register_purge("idempotency", _idempotency_expired)
    register_purge("worker_heartbeats", _heartbeats_gone)
