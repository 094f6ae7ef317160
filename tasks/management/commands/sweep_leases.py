from __future__ import annotations

import logging
import signal
import threading
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db import DatabaseError, close_old_connections

from tasks.services import leases_sweep

log = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Mark overdue leases expired (once, or every --interval seconds until stopped)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true")
        parser.add_argument("--interval", type=float, default=settings.ETHER_SWEEP_INTERVAL_SECONDS)

    def handle(self, *args: Any, **options: Any) -> None:
        if options["once"]:
            self.stdout.write(f"expired {leases_sweep()} lease(s)")
            return
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        self.stdout.write(f"sweeping leases every {options['interval']}s")
        while not stop.is_set():
            try:
                count = leases_sweep()
                if count:
                    log.info("expired %d lease(s)", count)
            except DatabaseError:
                # A locked or restarting database is retried on the next tick.
                log.exception("lease sweep failed")
            close_old_connections()
            stop.wait(options["interval"])
