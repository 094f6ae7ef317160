from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from api.backups import BackupError, backup, vendor


class Command(BaseCommand):
    help = (
        "Write a consistent backup of the whole database to PATH while the server runs: "
        "SQLite's online backup API, or pg_dump --format=custom on Postgres (docs/deploy.md)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path)

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["path"]
        try:
            backup(path)
        except BackupError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            f"backed up the {vendor()} database to {path} ({path.stat().st_size} bytes)"
        )
