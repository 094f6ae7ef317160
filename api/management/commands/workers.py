from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from api.heartbeat import worker_states
from api.models import WorkerHeartbeat


class Command(BaseCommand):
    help = (
        "List the background workers /readyz checks, with their last heartbeat; "
        "--forget NAME drops a worker retired on purpose."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--forget", metavar="NAME")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["forget"]:
            deleted, _ = WorkerHeartbeat.objects.filter(name=options["forget"]).delete()
            if not deleted:
                raise CommandError(f"no worker named {options['forget']!r} has beaten")
            self.stdout.write(f"forgot {options['forget']}")
            return
        beats = {row.name: row for row in WorkerHeartbeat.objects.all()}
        for name, state in sorted(worker_states().items()):
            row = beats.get(name)
            where = (
                f" pid {row.pid} on {row.host}, last beat {row.beat_at:%Y-%m-%d %H:%M:%S}Z"
                if row
                else ""
            )
            self.stdout.write(f"{name}: {state}{where}")
