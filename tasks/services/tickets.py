"""Realtime tickets: a short-lived, single-use credential for ``?token=`` on the realtime
URL, so a browser never puts its long-lived token in a URL. Spending one is the hub's
(``tasks/realtime/hub.py``), at connect."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from accounts.credentials import TICKET_PREFIX, hash_secret, new_secret
from accounts.models import AccessToken
from tasks.models import HarnessApp, RealtimeTicket

TICKET_SECONDS = 30


@dataclass(frozen=True)
class IssuedTicket:
    ticket: str
    expires_at: datetime


def ticket_create(
    *, user: Any = None, token: AccessToken | None = None, app: HarnessApp | None = None
) -> IssuedTicket:
    """A single-use ticket of a person (``token``: the access token of the request that
    minted it) or of a harness app (minted with its key). Only its hash is stored: the
    secret exists only in the return value."""
    if (user is None) == (app is None):
        raise ValueError("a ticket is a person's or a harness app's")
    secret = new_secret(TICKET_PREFIX)
    expires = timezone.now() + timedelta(seconds=TICKET_SECONDS)
    RealtimeTicket.objects.create(
        user=user,
        access_token=token,
        harness_app=app,
        ticket_hash=hash_secret(secret),
        expires_at=expires,
    )
    return IssuedTicket(ticket=secret, expires_at=expires)
