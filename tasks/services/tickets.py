"""Realtime tickets: a short-lived, single-use credential for ``?token=`` on the realtime
URL, so a browser never puts its long-lived token in a URL. The hub
(``tasks/realtime/hub.py``) spends one at connect with ``ticket_spend``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from accounts.credentials import TICKET_PREFIX, hash_secret, new_secret
from accounts.models import AccessToken
from tasks.models import RealtimeTicket

TICKET_SECONDS = 30


@dataclass(frozen=True)
class IssuedTicket:
    ticket: str
    expires_at: datetime


def ticket_create(*, user: Any, token: AccessToken | None = None) -> IssuedTicket:
    """A single-use ticket; ``token`` is the access token of the request that minted it.
    Only its hash is stored: the secret exists only in the return value."""
    secret = new_secret(TICKET_PREFIX)
    expires = timezone.now() + timedelta(seconds=TICKET_SECONDS)
    RealtimeTicket.objects.create(
        user=user, access_token=token, ticket_hash=hash_secret(secret), expires_at=expires
    )
    return IssuedTicket(ticket=secret, expires_at=expires)


def ticket_spend(*, secret: str) -> RealtimeTicket | None:
    """The ticket behind ``secret``, spent now; None when it is unknown, spent or expired.

    One conditional ``UPDATE … WHERE used_at IS NULL AND expires_at > now`` decides, so
    two connects racing with one ticket get it once between them, on either database.
    The row comes with its user and access token: the caller still checks that they hold."""
    now = timezone.now()
    ticket = (
        RealtimeTicket.objects.select_related("user", "access_token")
        .filter(ticket_hash=hash_secret(secret))
        .first()
    )
    if ticket is None:
        return None
    spent = RealtimeTicket.objects.filter(
        pk=ticket.pk, used_at__isnull=True, expires_at__gt=now
    ).update(used_at=now)
    return ticket if spent else None
