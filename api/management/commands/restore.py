from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from api.backups import BackupError, restore, vendor


class Command(BaseCommand):
    help = (
        "Replace everything in the database with the backup at PATH (made by `backup` on "
        "the same kind of database). Stop the servers and workers first."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path)
        parser.add_argument(
            "--no-input", action="store_false", dest="interactive", help="Do not ask to confirm."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["path"]
        if options["interactive"]:
            answer = input(
                f"This replaces everything in the {vendor()} database with {path}. "
                "Type 'yes' to go on: "
            )
            if answer.strip() != "yes":
                raise CommandError("restore cancelled")
        try:
            restore(path)
        except BackupError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"restored the {vendor()} database from {path}")
