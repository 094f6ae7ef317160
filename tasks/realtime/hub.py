"""The realtime hub's database side: who may connect, which topics they may see, and the
persisted events a subscriber replays. The consumer calls these through
``database_sync_to_async``; nothing here knows about sockets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone
from rest_framework.exceptions import AuthenticationFailed

from accounts.auth import org_of_user, user_for_token
from accounts.credentials import SECRET_PARAMS, TICKET_PREFIX
from accounts.models import AccessToken, Org
from api.ids import is_public_id
from tasks.events import frame
from tasks.models import Event, EventTopic, Task
from tasks.services.tickets import ticket_spend


@dataclass(frozen=True)
class Viewer:
    user: Any
    org: Org
    token_id: int | None = None  # the access token behind the stream, if one opened it


# The query parameter that carries the credential, and names that look like it: a name
# that only decodes to one of these (``%74oken``) is refused, not silently accepted, so
# the server and its access log (ether_site/serve.py) never read a URL differently.
CREDENTIAL_PARAM = "token"


class BadCredentialParameter(ValueError):
    pass


def credential_from_query(query_string: bytes) -> str | None:
    """The ``token`` of a raw query string. Raises BadCredentialParameter when the name is
    percent-encoded or given twice: only a plain, single ``token=`` is read."""
    found: list[str] = []
    for pair in query_string.decode("latin-1").replace(";", "&").split("&"):
        raw_name, _, raw_value = pair.partition("=")
        name = unquote_plus(raw_name)
        if name.lower() not in SECRET_PARAMS:
            continue
        if raw_name != name or name != CREDENTIAL_PARAM:
            raise BadCredentialParameter("credential parameter names are sent plain: token=")
        found.append(unquote_plus(raw_value))
    if len(found) > 1:
        raise BadCredentialParameter("token= is given more than once")
    return found[0] if found else None


def _token_usable(token: AccessToken | None) -> bool:
    if token is None:
        return True
    return token.revoked_at is None and (
        token.expires_at is None or token.expires_at > timezone.now()
    )


def viewer_for_secret(secret: str | None) -> Viewer | None:
    """The person behind an access token or a single-use ticket; None refuses the socket."""
    if not secret:
        return None
    user = None
    token_id = None
    if secret.startswith(TICKET_PREFIX):
        ticket = ticket_spend(secret=secret)
        # A ticket minted with a token revoked since is no better than the token.
        if ticket is not None and ticket.user.is_active and _token_usable(ticket.access_token):
            user, token_id = ticket.user, ticket.access_token_id
    else:
        try:
            user, row = user_for_token(secret)
        except AuthenticationFailed:
            return None
        token_id = row.pk
    if user is None:
        return None
    org = org_of_user(user)
    return Viewer(user=user, org=org, token_id=token_id) if org is not None else None


def credential_valid(*, user_id: int, token_id: int | None) -> bool:
    """Whether the credentials behind an open stream still hold: the user is active and
    the token (if any) is neither revoked nor expired. The streams' periodic re-check."""
    if not get_user_model().objects.filter(pk=user_id, is_active=True).exists():
        return False
    if token_id is None:
        return True
    token = AccessToken.objects.filter(pk=token_id).first()
    return token is not None and _token_usable(token)


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
