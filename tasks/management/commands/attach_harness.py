from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.models import Org
from api.errors import DomainError, describe
from tasks.harnesses.services import harness_app_attach
from tasks.models import HarnessApp


class Command(BaseCommand):
    help = "Point harness app APP_ID of ORG at a harness definition (id or name), or --none."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("org", help="org slug")
        parser.add_argument("app_id")
        parser.add_argument("harness", nargs="?", default="", help="definition id or name")
        parser.add_argument("--none", action="store_true", help="detach its definition")

    def handle(self, *args: Any, **options: Any) -> None:
        if bool(options["harness"]) == options["none"]:
            raise CommandError("Give a harness definition (id or name), or --none.")
        app = HarnessApp.objects.filter(org__slug=options["org"], app_id=options["app_id"]).first()
        if app is None or not Org.objects.filter(slug=options["org"]).exists():
            raise CommandError(f"No harness app {options['app_id']!r} in {options['org']!r}.")
        try:
            harness_app_attach(app=app, ref=options["harness"] or None)
        except DomainError as exc:
            raise CommandError(describe(exc))
        target = app.harness.name if app.harness else "no harness definition"
        self.stdout.write(f"{app.org.slug}/{app.app_id} now claims with {target}.")
