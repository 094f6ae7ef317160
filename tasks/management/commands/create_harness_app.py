from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.models import Org
from api.errors import DomainError, describe
from tasks.harnesses.keys import harness_app_create


class Command(BaseCommand):
    help = "Register harness app APP_ID in ORG; its API key is the last line of output."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("org", help="org slug")
        parser.add_argument("app_id")
        parser.add_argument(
            "--harness", default="", help="its harness definition: an id or addressable name"
        )
        parser.add_argument(
            "--rotate", action="store_true", help="give an existing app a new key (the old stops)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        org = Org.objects.filter(slug=options["org"]).first()
        if org is None:
            raise CommandError(f"No org {options['org']!r}.")
        try:
            issued = harness_app_create(
                org=org,
                app_id=options["app_id"],
                harness=options["harness"],
                rotate=options["rotate"],
            )
        except DomainError as exc:
            raise CommandError(describe(exc))
        self.stdout.write(f"Harness app {org.slug}/{issued.app.app_id} key (shown once):")
        self.stdout.write(issued.key)
