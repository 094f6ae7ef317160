"""The realtime hub's database side: who may connect, which topics they may see, and the
persisted events a subscriber replays. The consumer calls these through
``database_sync_to_async``; nothing here knows about sockets."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone
from rest_framework.exceptions import AuthenticationFailed

from corpus.credentials import TICKET_PREFIX, hash_secret, new_secret
from corpus.http.auth import org_of_user, user_for_token
from corpus.ids import is_public_id
from corpus.models import Org
from tasks.events import frame
from tasks.models import Event, EventTopic, RealtimeTicket, Task

TICKET_SECONDS = 30


@dataclass(frozen=True)
class Viewer:
    user: Any
    org: Org


@dataclass(frozen=True)
class IssuedTicket:
    ticket: str
    expires_at: Any


def ticket_create(*, user: Any) -> IssuedTicket:
    secret = new_secret(TICKET_PREFIX)
    expires = timezone.now() + timedelta(seconds=TICKET_SECONDS)
    RealtimeTicket.objects.create(user=user, ticket_hash=hash_secret(secret), expires_at=expires)
    return IssuedTicket(ticket=secret, expires_at=expires)


def viewer_for_secret(secret: str | None) -> Viewer | None:
    """The person behind an access token or a single-use ticket; None refuses the socket."""
    if not secret:
        return None
    user = None
    if secret.startswith(TICKET_PREFIX):
        now = timezone.now()
        ticket = (
            RealtimeTicket.objects.select_related("user")
            .filter(ticket_hash=hash_secret(secret))
            .first()
        )
        # The conditional update spends the ticket exactly once, even under a race.
        if ticket is not None and RealtimeTicket.objects.filter(
            pk=ticket.pk, used_at__isnull=True, expires_at__gt=now
        ).update(used_at=now):
            user = ticket.user if ticket.user.is_active else None
    else:
        try:
            user, _ = user_for_token(secret)
        except AuthenticationFailed:
            return None
    if user is None:
        return None
    org = org_of_user(user)
    return Viewer(user=user, org=org) if org is not None else None


def topic_allowed(viewer: Viewer, topic: str) -> bool:
    """``tasks/{id}`` of a task of the viewer's org, or ``activity/{the viewer's org}``."""
    kind, _, rest = topic.partition("/")
    if kind == "activity":
        return rest == viewer.org.slug
    if kind == "tasks" and is_public_id(rest, "task"):
        return Task.objects.filter(org=viewer.org, public_id=rest).exists()
    return False


def last_seq(topic: str) -> int:
    return EventTopic.objects.filter(name=topic).values_list("last_seq", flat=True).first() or 0


@dataclass(frozen=True)
class Replay:
    frames: list[dict[str, Any]]
    recovered: bool
    position: int  # the seq the subscriber is at once these frames are sent


def replay_after(topic: str, since: int, *, limit: int | None = None) -> Replay:
    """The persisted events after ``since``; more than ``ETHER_REPLAY_MAX`` is not replayed
    (``recovered: false``) and the subscriber continues from the current position."""
    limit = limit or settings.ETHER_REPLAY_MAX
    rows = list(Event.objects.filter(topic=topic, seq__gt=since).order_by("seq")[: limit + 1])
    if len(rows) > limit:
        return Replay(frames=[], recovered=False, position=last_seq(topic))
    return Replay(
        frames=[frame(e) for e in rows], recovered=True, position=rows[-1].seq if rows else since
    )


def frames_between(topic: str, after: int, before: int) -> list[dict[str, Any]]:
    """Events with ``after < seq < before``: fills a gap when live frames arrive out of order.
    Every one of them is committed: a seq is taken under the topic row's lock, held until
    its transaction commits, so a later seq can only be published after it."""
    rows = Event.objects.filter(topic=topic, seq__gt=after, seq__lt=before).order_by("seq")
    return [frame(e) for e in rows]


def frames_after(topic: str, after: int, limit: int = 500) -> list[dict[str, Any]]:
    rows = Event.objects.filter(topic=topic, seq__gt=after).order_by("seq")[:limit]
    return [frame(e) for e in rows]
