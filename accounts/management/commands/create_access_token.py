from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from accounts.services import access_token_create
from api.errors import DomainError, describe


class Command(BaseCommand):
    help = "Create a personal access token for USERNAME; the token is the last line of output."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--label", default="")
        parser.add_argument("--expires-days", type=int, default=None)

    def handle(self, *args: Any, **options: Any) -> None:
        expires = None
        if options["expires_days"] is not None:
            if options["expires_days"] < 1:
                raise CommandError("--expires-days must be at least 1")
            expires = timezone.now() + timedelta(days=options["expires_days"])
        try:
            issued = access_token_create(
                username=options["username"], label=options["label"], expires_at=expires
            )
        except DomainError as exc:
            raise CommandError(describe(exc))
        self.stdout.write(f"Access token for {options['username']} (shown once):")
        self.stdout.write(issued.secret)
