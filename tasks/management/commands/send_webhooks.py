from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db import DatabaseError, close_old_connections, connection
from django.utils import timezone

from api.heartbeat import worker_beat
from tasks.webhooks.sender import outbox_gauges, send_one

log = logging.getLogger(__name__)
# Each worker thread beats at most this often; /readyz calls a worker stale after 60 s.
BEAT_SECONDS = 10.0


class Command(BaseCommand):
    help = (
        "Send the webhook outbox: claim due deliveries, sign, POST, retry with backoff "
        "(every --interval seconds until stopped, or --once). Several may run at once."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true", help="send what is due, then stop")
        parser.add_argument("--interval", type=float, default=settings.ETHER_WEBHOOK_POLL_SECONDS)
        parser.add_argument(
            "--workers",
            type=int,
            default=4,
            help="deliveries sent at once (a slow receiver holds up only one worker)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        name = f"{socket.gethostname()}:{os.getpid()}"
        stop = threading.Event()
        if options["once"]:
            sent = 0
            while send_one(sender=name) is not None:
                sent += 1
            self.stdout.write(f"sent {sent} webhook attempt(s)")
            return
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        workers = [
            threading.Thread(target=self.work, args=(f"{name}/{i}", stop, options["interval"]))
            for i in range(max(1, options["workers"]))
        ]
        self.stdout.write(f"sending webhooks as {name} with {len(workers)} worker(s)")
        self.stdout.flush()
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()

    def work(self, sender: str, stop: threading.Event, interval: float) -> None:
        """One worker: send while deliveries are due, else wait ``interval``. A stop
        lets the attempt in flight finish and be recorded."""
        last_beat = -BEAT_SECONDS
        try:
            while not stop.is_set():
                try:
                    if time.monotonic() - last_beat >= BEAT_SECONDS:
                        # /readyz notices a sender that stopped (api/heartbeat.py).
                        worker_beat("send_webhooks")
                        outbox_gauges(timezone.now())
                        last_beat = time.monotonic()
                    busy = send_one(sender=sender) is not None
                except DatabaseError:
                    # A locked or restarting database: try again on the next tick.
                    log.exception("webhook sender %s: database error", sender)
                    busy = False
                close_old_connections()
                if not busy:
                    stop.wait(interval)
        finally:
            connection.close()
