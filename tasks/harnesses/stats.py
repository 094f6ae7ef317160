"""``GET /v1/harnesses/{id}/stats``: what ran under a definition, in Everruns'
``ResourceStats`` shape, for the caller's org.

Everruns' sessions are Ether's runs. Ether sees no tokens or costs (the harness's model
calls are its own), so those totals are 0. Beyond Everruns: ``app_count`` and
``outcomes`` (runs by how they ended).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db.models import Count, DurationField, ExpressionWrapper, F, Max, Min, Q, Sum
from django.utils import timezone

from accounts.models import Org
from api.rfc3339 import iso
from tasks.models import (
    Harness,
    HarnessApp,
    Result,
    ResultStatus,
    Run,
    RunStatus,
    Step,
    TaskStatus,
)


def _ms(value: timedelta | None) -> int:
    return int(value.total_seconds() * 1000) if value else 0


def harness_stats(*, org: Org, harness: Harness) -> dict[str, Any]:
    now = timezone.now()
    runs = Run.objects.filter(harness=harness, task__org=org)
    live = Q(status=RunStatus.LIVE)
    counts = runs.aggregate(
        total=Count("pk"),
        active=Count("pk", filter=live & Q(lease_expires_at__gt=now)),
        # A live run whose lease lapsed: no heartbeat lately, nobody working.
        idle=Count("pk", filter=live & Q(lease_expires_at__lte=now)),
        # A live run whose task is paused waits for a person's answer.
        waiting=Count("pk", filter=live & Q(task__status=TaskStatus.PAUSED)),
        live=Count("pk", filter=live),
        ended=Count("pk", filter=Q(ended_at__isnull=False)),
        first=Min("started_at"),
        last=Max("started_at"),
        expired=Count("pk", filter=Q(status=RunStatus.EXPIRED)),
        released=Count("pk", filter=Q(status=RunStatus.RELEASED)),
    )
    # Apart: joining steps in the aggregate above would count each run once per step.
    started = runs.filter(steps__isnull=False).distinct().count()
    duration = runs.filter(ended_at__isnull=False).aggregate(
        total=Sum(ExpressionWrapper(F("ended_at") - F("started_at"), output_field=DurationField()))
    )["total"]
    steps = Step.objects.filter(run__in=runs).aggregate(n=Count("pk"), last=Max("created_at"))
    results = dict(
        Result.objects.filter(run__in=runs)
        .values_list("status")
        .annotate(n=Count("pk"))
        .values_list("status", "n")
    )
    total_ms = _ms(duration)
    return {
        "session_count": counts["total"],
        "active_session_count": counts["active"],
        "idle_session_count": counts["idle"],
        "started_session_count": started,
        "waiting_for_tool_results_session_count": counts["waiting"],
        "execution_count": steps["n"],
        "total_session_duration_ms": total_ms,
        "avg_session_duration_ms": total_ms // counts["ended"] if counts["ended"] else None,
        "first_session_at": iso(counts["first"]) if counts["first"] else None,
        "last_session_at": iso(counts["last"]) if counts["last"] else None,
        "last_execution_at": iso(steps["last"]) if steps["last"] else None,
        "total_input_tokens": 0,
        "total_output_tokens": 0,
        "total_cache_read_tokens": 0,
        "total_cache_creation_tokens": 0,
        "total_actual_cost_usd": 0.0,
        "total_estimated_cost_usd": 0.0,
        "total_cost_usd": 0.0,
        "app_count": HarnessApp.objects.filter(
            harness=harness, org=org, revoked_at__isnull=True
        ).count(),
        "outcomes": {
            "live": counts["live"],
            **{status.value: results.get(status.value, 0) for status in ResultStatus},
            "expired": counts["expired"],
            "released": counts["released"],
        },
    }
