"""Realtime tickets: a short-lived, single-use credential for ``?token=`` on the realtime
URL, so a browser never puts its long-lived token in a URL. Spending one is the hub's
(``tasks/realtime/hub.py``), at connect."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Q
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


def tickets_spent_or_expired(now: datetime) -> Any:
    """Tickets no socket can open any more (retention, ``api.retention``): a deleted
    ticket is refused as unknown, exactly as a spent one is."""
    return RealtimeTicket.objects.filter(Q(used_at__isnull=False) | Q(expires_at__lt=now))
