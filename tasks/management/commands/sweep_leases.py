from __future__ import annotations

import logging
import signal
import threading
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db import DatabaseError, close_old_connections

from api import metrics
from api.heartbeat import worker_beat
from api.retention import purge_expired
from tasks.services import leases_sweep

log = logging.getLogger(__name__)

WORKER = "sweep_leases"


class Command(BaseCommand):
    help = (
        "Mark overdue leases expired and delete rows past their retention (api/retention.py), "
        "once or every --interval seconds until stopped; each loop beats the worker's "
        "heartbeat that /readyz checks."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true")
        parser.add_argument("--interval", type=float, default=settings.ETHER_SWEEP_INTERVAL_SECONDS)

    def handle(self, *args: Any, **options: Any) -> None:
        if options["once"]:
            expired = leases_sweep()
            deleted = {kind: n for kind, n in purge_expired().items() if n}
            if deleted:
                self.stdout.write("deleted " + ", ".join(f"{k}: {n}" for k, n in deleted.items()))
            self.stdout.write(f"expired {expired} lease(s)")
            return
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        self.stdout.write(f"sweeping leases every {options['interval']}s")
        next_purge = 0.0
        try:
            while not stop.is_set():
                try:
                    worker_beat(WORKER)
                    count = leases_sweep()
                    if count:
                        log.info("expired %d lease(s)", count)
                    if time.monotonic() >= next_purge:
                        next_purge = time.monotonic() + settings.ETHER_RETENTION_INTERVAL_SECONDS
                        deleted = {k: n for k, n in purge_expired().items() if n}
                        if deleted:
                            log.info("retention deleted %s", deleted)
                except DatabaseError:
                    # A locked or restarting database is retried on the next tick.
                    log.exception("lease sweep failed")
                close_old_connections()
                stop.wait(options["interval"])
        finally:
            metrics.process_exited()
