from __future__ import annotations

import logging
import signal
import threading
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db import DatabaseError, close_old_connections

from delivery.verification.services import verifications_sweep

log = logging.getLogger(__name__)


class Command(BaseCommand):
    help = (
        "Run the PR checks on GitHub that are due: rate-limited ones past their reset, and "
        "ones a crashed worker left running (once, or every --interval seconds)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true")
        parser.add_argument("--interval", type=float, default=settings.ETHER_SWEEP_INTERVAL_SECONDS)

    def handle(self, *args: Any, **options: Any) -> None:
        if options["once"]:
            self.stdout.write(f"ran {verifications_sweep()} PR check(s)")
            return
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        self.stdout.write(f"sweeping PR checks every {options['interval']}s")
        while not stop.is_set():
            try:
                count = verifications_sweep()
                if count:
                    log.info("ran %d PR check(s)", count)
            except DatabaseError:
                log.exception("PR check sweep failed")
            close_old_connections()
            stop.wait(options["interval"])
