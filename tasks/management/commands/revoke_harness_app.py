from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.models import Org
from api.errors import DomainError, describe
from tasks.harnesses.keys import harness_app_revoke


class Command(BaseCommand):
    help = "Revoke the API key of harness app APP_ID in ORG."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("org")
        parser.add_argument("app_id")

    def handle(self, *args: Any, **options: Any) -> None:
        org = Org.objects.filter(slug=options["org"]).first()
        if org is None:
            raise CommandError(f"No org {options['org']!r}.")
        try:
            app = harness_app_revoke(org=org, app_id=options["app_id"])
        except DomainError as exc:
            raise CommandError(describe(exc))
        self.stdout.write(f"Revoked {org.slug}/{app.app_id} at {app.revoked_at.isoformat()}")
