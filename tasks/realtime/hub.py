"""The realtime hub's database side: who may connect, which topics they may see, and the
persisted events a subscriber replays. The consumer calls these through
``database_sync_to_async``; nothing here knows about sockets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone
from rest_framework.exceptions import AuthenticationFailed

from accounts.auth import org_of_user, user_for_token
from accounts.credentials import HARNESS_KEY_PREFIX, SECRET_PARAMS, TICKET_PREFIX, hash_secret
from accounts.models import AccessToken, Org
from api.ids import is_public_id
from tasks.events import frame
from tasks.models import Event, EventTopic, HarnessApp, Task
from tasks.realtime.streams import StreamCredential
from tasks.services.tickets import ticket_spend


def off_thread(func: Any) -> Any:
    """``func`` as a coroutine run in a small pool of threads of its own, not in the one
    thread that runs every request's sync code (``thread_sensitive``): a storm of 1,000
    reconnecting sockets then neither queues behind the harness's writes nor delays them
    (queued there, handshakes passed daphne's 5 s connect timeout and were refused 403).
    Connections are closed or reused as ``database_sync_to_async`` does."""
    return database_sync_to_async(func, thread_sensitive=False)


@dataclass(frozen=True)
class Viewer:
    """Who holds a stream: a person (``user``), or a harness app (``app``, by its key or
    a ticket minted with it; ``user`` is None then)."""

    user: Any
    org: Org
    token_id: int | None = None  # the access token behind the stream, if one opened it
    app: HarnessApp | None = None

    @property
    def credential(self) -> StreamCredential:
        if self.app is not None:
            return StreamCredential(user_id=None, token_id=None, app_id=self.app.pk)
        return StreamCredential(user_id=self.user.pk, token_id=self.token_id)


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


def _app_viewer(app: HarnessApp | None) -> Viewer | None:
    if app is None or app.revoked_at is not None:
        return None
    return Viewer(user=None, org=app.org, app=app)


def viewer_for_secret(secret: str | None) -> Viewer | None:
    """The person behind an access token or a single-use ticket, or the harness app
    behind its key or a ticket minted with it; None refuses the socket."""
    if not secret:
        return None
    if secret.startswith(HARNESS_KEY_PREFIX):
        app = HarnessApp.objects.select_related("org").filter(key_hash=hash_secret(secret))
        return _app_viewer(app.first())
    user = None
    token_id = None
    if secret.startswith(TICKET_PREFIX):
        ticket = ticket_spend(secret=secret)
        if ticket is not None and ticket.harness_app_id is not None:
            # A ticket of an app revoked since is worth nothing.
            return _app_viewer(ticket.harness_app)
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


def credential_valid(*, viewer: Viewer) -> bool:
    """Whether the credentials behind an open stream still hold: the user is active and
    the token (if any) is neither revoked nor expired; or the harness app is not revoked
    and still has the key it connected with. The streams' periodic re-check."""
    if viewer.app is not None:
        return HarnessApp.objects.filter(
            pk=viewer.app.pk, key_hash=viewer.app.key_hash, revoked_at__isnull=True
        ).exists()
    return user_credential_valid(user_id=viewer.user.pk, token_id=viewer.token_id)


def credentials_ended(viewers: list[Viewer]) -> set[StreamCredential]:
    """Of the credentials behind open streams, those that no longer hold (the rules of
    ``credential_valid``), in at most three queries whatever their number."""
    people = [v for v in viewers if v.app is None]
    active = set(
        get_user_model()
        .objects.filter(pk__in={v.user.pk for v in people}, is_active=True)
        .values_list("pk", flat=True)
    )
    token_ids = {v.token_id for v in people if v.token_id is not None}
    tokens = {t.pk: t for t in AccessToken.objects.filter(pk__in=token_ids)} if token_ids else {}
    app_ids = {v.app.pk for v in viewers if v.app is not None}
    apps = (
        set(
            HarnessApp.objects.filter(pk__in=app_ids, revoked_at__isnull=True).values_list(
                "pk", "key_hash"
            )
        )
        if app_ids
        else set()
    )
    ended = set()
    for viewer in viewers:
        if viewer.app is not None:
            holds = (viewer.app.pk, viewer.app.key_hash) in apps
        else:
            token = tokens.get(viewer.token_id) if viewer.token_id is not None else None
            holds = viewer.user.pk in active and (
                viewer.token_id is None or (token is not None and _token_usable(token))
            )
        if not holds:
            ended.add(viewer.credential)
    return ended


def user_credential_valid(*, user_id: int, token_id: int | None) -> bool:
    if not get_user_model().objects.filter(pk=user_id, is_active=True).exists():
        return False
    if token_id is None:
        return True
    token = AccessToken.objects.filter(pk=token_id).first()
    return token is not None and _token_usable(token)


def topic_allowed(viewer: Viewer, topic: str) -> bool:
    """``tasks/{id}`` of a task of the viewer's org, or ``activity/{the viewer's org}``
    for people (a harness app follows its tasks, not the org's grid)."""
    kind, _, rest = topic.partition("/")
    if kind == "activity":
        return viewer.app is None and rest == viewer.org.slug
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


FRAMES_AFTER_LIMIT = 500  # events per read when a stream follows or catches up on the log


def frames_after(topic: str, after: int, limit: int = FRAMES_AFTER_LIMIT) -> list[dict[str, Any]]:
    rows = Event.objects.filter(topic=topic, seq__gt=after).order_by("seq")[:limit]
    return [frame(e) for e in rows]
