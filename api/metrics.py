"""Every Prometheus metric Ether exports, in one module on the ground floor.

Each app records through the objects below (``metrics.STEPS.inc()``); none defines its
own, so the names, labels and meanings are read in one place and in docs/deploy.md.

Multiprocess mode: with ``PROMETHEUS_MULTIPROC_DIR`` set before this module is imported
(``make run`` and the systemd units set it; settings create the directory), every
process — N daphne processes, the sweeper, the webhook sender — writes its values to
files there, and ``/metrics`` on any process reads them all, so counters add up across
processes. Gauges say how they combine (``multiprocess_mode``). Without the variable
(tests in one process) the values live in this process's default registry.

Labels carry only bounded sets: a route is the URL pattern's name, never a raw path.
Counts are taken once the change commits (``count_on_commit``), so a rolled-back
claim or step counts nothing.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from django.db import transaction
from prometheus_client import REGISTRY as PROCESS_REGISTRY

if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    # Each metric below opens its file there as it is created.
    Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).mkdir(parents=True, exist_ok=True)
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

# --- HTTP (ether_site.observability) ----------------------------------------------------
REQUESTS = Counter(
    "ether_http_requests_total",
    "HTTP requests answered, by URL pattern name, method and status.",
    ["route", "method", "status"],
)
REQUEST_SECONDS = Histogram(
    "ether_http_request_duration_seconds",
    "Time to the response's headers (for SSE: to the start of the stream), by route.",
    ["route", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
# Requests refused past capacity with 503 overloaded, by where: admission (api.admission),
# step_lane (ether_site.fastlane) or event_loop (ether_site.loadshed, before the
# application saw them). None reached a view, so ether_http_requests_total has none.
OVERLOAD_REFUSALS = Counter(
    "ether_overload_refusals_total",
    "Requests refused 503 overloaded, by where: admission, step_lane, event_loop.",
    ["where"],
)
# API requests (not streams) a served process has read and not yet answered: the crowd
# that ether_site.loadshed refuses past. livesum: the sum over live processes.
API_INFLIGHT = Gauge(
    "ether_api_requests_in_flight",
    "API requests (not SSE, WebSocket or claim-next) read and not yet answered.",
    multiprocess_mode="livesum",
)

# --- The harness loop (tasks, delivery) ---------------------------------------------------
CLAIMS = Counter("ether_claims_total", "Leases granted by a claim.")
LEASE_EXPIRIES = Counter(
    "ether_lease_expiries_total", "Live runs marked expired (by a request or the sweeper)."
)
STEPS = Counter("ether_steps_total", "Steps recorded (replayed retries not counted).")
RESULTS = Counter("ether_results_total", "Results stored, by status.", ["status"])
DELIVERIES = Counter("ether_deliveries_total", "Delivery payloads composed and stored.")

# --- Webhooks (the sender, manage.py send_webhooks) ---------------------------------------
# One attempt is one HTTP request to a receiver; a failure is an attempt that got no 2xx.
# The sender's loop, per tick: ``api.heartbeat.worker_beat("send_webhooks")``, then per
# attempt ``WEBHOOK_ATTEMPTS.inc()`` and on failure ``WEBHOOK_FAILURES.labels(reason)
# .inc()``, then ``WEBHOOK_OUTBOX_PENDING.set(n)`` and ``WEBHOOK_OUTBOX_LAG_SECONDS
# .set(age)``; ``process_exited()`` as it stops (as ``sweep_leases`` does).
WEBHOOK_ATTEMPTS = Counter("ether_webhook_attempts_total", "Webhook delivery attempts made.")
WEBHOOK_FAILURES = Counter(
    "ether_webhook_failures_total",
    "Webhook attempts that failed, by reason: status (a non-2xx answer), timeout, "
    "refused (connection or SSRF guard), error (anything else).",
    ["reason"],
)
# Set by the sender on each tick: the outbox as it last saw it.
WEBHOOK_OUTBOX_PENDING = Gauge(
    "ether_webhook_outbox_pending",
    "Webhook messages written and not yet acknowledged by their receiver.",
    multiprocess_mode="mostrecent",
)
WEBHOOK_OUTBOX_LAG_SECONDS = Gauge(
    "ether_webhook_outbox_lag_seconds",
    "Age of the oldest unacknowledged webhook message (0 when the outbox is empty).",
    multiprocess_mode="mostrecent",
)

# --- Realtime (tasks.realtime) -------------------------------------------------------------
# livesum: the sum over live processes; a dead process's share disappears with it.
REALTIME_CONNECTIONS = Gauge(
    "ether_realtime_connections",
    "Open realtime streams, by transport (websocket, sse).",
    ["transport"],
    multiprocess_mode="livesum",
)
REALTIME_SUBSCRIPTIONS = Gauge(
    "ether_realtime_subscriptions",
    "Topics subscribed to over open WebSockets.",
    multiprocess_mode="livesum",
)
FRAMES_SENT = Counter(
    "ether_realtime_frames_sent_total", "Event frames sent, by transport.", ["transport"]
)
SLOW_READER_CLOSES = Counter(
    "ether_realtime_slow_reader_closes_total",
    "WebSockets closed with 4008 because their reader fell behind.",
)
REPLAY_EVENTS = Histogram(
    "ether_realtime_replay_events",
    "Events replayed from the log to one subscription or SSE stream on (re)connect.",
    ["transport"],
    buckets=(0, 1, 5, 10, 50, 100, 250, 500, 1000),
)

# --- Memory (corpus compaction) ----------------------------------------------------------
COMPACTIONS = Counter("ether_compactions_total", "Working-memory compactions stored.")
# Compaction runs inside the result's transaction, so its lag is the time it adds there:
# how long after a result the task's memory is folded (and the result answered).
COMPACTION_SECONDS = Histogram(
    "ether_compaction_duration_seconds",
    "Time one compaction took (the delay it adds to the result that triggered it).",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)

# --- Workers and retention ------------------------------------------------------------------
WORKER_TICKS = Counter(
    "ether_worker_ticks_total", "Loop iterations of the background workers.", ["worker"]
)
RETENTION_DELETED = Counter(
    "ether_retention_deleted_total", "Rows deleted by the retention sweep, by kind.", ["kind"]
)


def count_on_commit(record: Callable[[], object]) -> None:
    """Records a metric once the current transaction commits (at once outside one)."""
    transaction.on_commit(record)


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def exposition() -> bytes:
    """The text format of every metric: of all processes in multiprocess mode, else of
    this one."""
    directory = multiprocess_dir()
    if directory is None:
        return generate_latest(PROCESS_REGISTRY)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=directory)
    return generate_latest(registry)


def forget_dead_processes() -> list[int]:
    """Drops the live gauges of processes that are gone without saying so (killed,
    crashed); a server calls it as it starts. The directory is per host, so a pid that
    no longer exists here is a dead process."""
    directory = multiprocess_dir()
    if directory is None:
        return []
    dead = set()
    for path in Path(directory).glob("gauge_live*_*.db"):
        pid = path.stem.rsplit("_", 1)[-1]
        if pid.isdigit() and not _alive(int(pid)):
            dead.add(int(pid))
    for pid in dead:
        multiprocess.mark_process_dead(pid, directory)
    return sorted(dead)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True


def process_exited(pid: int | None = None) -> None:
    """Drops a stopping process's live gauges (``livesum``) from the shared directory.

    Called by the server and the workers on a clean exit; after a crash the files stay
    until the directory is cleared (a tmpfs cleared at boot, docs/deploy.md)."""
    directory = multiprocess_dir()
    if directory is not None:
        multiprocess.mark_process_dead(os.getpid() if pid is None else pid, directory)
