"""Background workers say they are alive; ``/readyz`` reads it.

A worker calls ``worker_beat(name)`` once per loop iteration: one ``UPDATE`` of its row
(``api.models.WorkerHeartbeat``), an ``INSERT`` the first time. The webhook sender
adopts it with the same one call at the top of its loop::

    from api.heartbeat import worker_beat
    worker_beat("send_webhooks")

``/readyz`` then checks every worker that has ever beaten, and requires the ones named
in ``ETHER_READY_WORKERS`` (default ``sweep_leases``) even before their first beat: a
worker that stopped, crashed or hangs shows up within ``ETHER_WORKER_STALE_SECONDS``.
A worker retired on purpose is forgotten with ``manage.py workers --forget NAME``.
"""

from __future__ import annotations

import os
import socket
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from api import metrics
from api.models import WorkerHeartbeat


def worker_beat(name: str) -> None:
    now = timezone.now()
    fields = {"beat_at": now, "pid": os.getpid(), "host": socket.gethostname()[:255]}
    metrics.WORKER_TICKS.labels(name).inc()
    if WorkerHeartbeat.objects.filter(name=name).update(**fields):
        return
    try:
        with transaction.atomic():
            WorkerHeartbeat.objects.create(name=name, started_at=now, **fields)
    except IntegrityError:
        # Two processes of one worker started together: the other inserted it.
        WorkerHeartbeat.objects.filter(name=name).update(**fields)


def worker_states(now: datetime | None = None) -> dict[str, str]:
    """``{name: "ok" | "stale (N s)" | "never seen"}`` for every worker /readyz checks."""
    now = now or timezone.now()
    stale_after = timedelta(seconds=settings.ETHER_WORKER_STALE_SECONDS)
    states = {name: "never seen" for name in settings.ETHER_READY_WORKERS}
    for name, beat_at in WorkerHeartbeat.objects.values_list("name", "beat_at"):
        age = now - beat_at
        states[name] = "ok" if age <= stale_after else f"stale ({int(age.total_seconds())} s)"
    return states
