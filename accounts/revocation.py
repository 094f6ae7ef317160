"""Ending the live streams of a credential that stopped being valid.

Every realtime stream (a WebSocket, in ``tasks/realtime/consumers.py``) joins one channel-layer
group per credential behind it: its user's, and the access token's when a token opened it
(directly or through a ticket minted with it). Revoking the token or deactivating the user
sends ``credential.revoked`` to that group once the change commits, and every consumer in
it, on every process, closes with 4001. These are control messages, not events: nothing is
persisted, nothing is replayed, so they do not go through ``tasks/events.py``. A lost
broadcast (Redis away) is covered by each stream's periodic re-check of its credential
(``ETHER_CREDENTIAL_RECHECK_SECONDS``), which is also how SSE streams notice.

Deactivation is caught on the user model's ``post_save``, so it works however it is done
(the admin, a service, the shell); a bulk ``update(is_active=False)`` skips signals and is
left to the re-check.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

log = logging.getLogger(__name__)

REVOKED = "credential.revoked"


def token_group(token_pk: int) -> str:
    return f"cred.token.{token_pk}"


def user_group(user_pk: int) -> str:
    return f"cred.user.{user_pk}"


def _broadcast(groups: list[str], reason: str) -> None:
    try:
        layer = get_channel_layer()
        if layer is None:
            return
        for group in groups:
            async_to_sync(layer.group_send)(group, {"type": REVOKED, "reason": reason})
    except Exception:
        # The credential is already refused everywhere; the streams' re-check ends them.
        log.exception("could not announce the revocation of %s", ", ".join(groups))


def announce_revoked(*, groups: list[str], reason: str) -> None:
    """Tells every stream in ``groups`` to close, after the current transaction commits
    (at once outside one): a rolled-back revoke ends nothing."""
    transaction.on_commit(partial(_broadcast, list(groups), reason))


def user_saved(sender: Any, instance: Any, **kwargs: Any) -> None:
    """``post_save`` of the user model: an inactive user keeps no stream."""
    if not getattr(instance, "is_active", True):
        announce_revoked(groups=[user_group(instance.pk)], reason="user_inactive")


def token_saved(sender: Any, instance: Any, **kwargs: Any) -> None:
    """``post_save`` of a token: ``revoked_at`` set by hand in the admin's change form
    (``access_token_revoke`` updates in place and announces by itself)."""
    if instance.revoked_at is not None:
        announce_revoked(groups=[token_group(instance.pk)], reason="token_revoked")
