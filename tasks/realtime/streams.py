"""Open realtime streams per credential, in this process: the cap, and what each stream
must join to be ended by a revoke.

A credential is the access token behind a stream when one opened it (directly or through
a ticket minted with it), a harness app (its key, or a ticket minted with it), else its
user (a browser session). WebSockets and SSE streams of one credential share one count,
capped at ``ETHER_STREAMS_PER_CREDENTIAL``: past it a WebSocket is closed with 4029 and
an SSE request is answered 429. The count lives in the
process (WebSockets run on its event loop, SSE views on its worker threads, hence the
lock), so it is exact and cannot leak past a crash; with N server processes a credential
may hold up to N times the cap.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from django.conf import settings

from accounts.revocation import token_group, user_group


def app_group(app_pk: int) -> str:
    """Where a harness app's revoke or key rotation is announced (tasks.harnesses.keys)."""
    return f"cred.app.{app_pk}"


@dataclass(frozen=True)
class StreamCredential:
    user_id: int | None
    token_id: int | None
    app_id: int | None = None  # a harness app's row, when its key opened the stream

    @property
    def key(self) -> str:
        if self.app_id is not None:
            return f"app:{self.app_id}"
        return f"token:{self.token_id}" if self.token_id is not None else f"user:{self.user_id}"

    @property
    def groups(self) -> list[str]:
        """The channel-layer groups a revoke of this credential is announced to."""
        if self.app_id is not None:
            return [app_group(self.app_id)]
        groups = [user_group(self.user_id)]
        if self.token_id is not None:
            groups.append(token_group(self.token_id))
        return groups


_lock = threading.Lock()
_open: dict[str, int] = {}


def stream_open(credential: StreamCredential) -> bool:
    """Takes a slot for one more stream of ``credential``; False when it holds the cap."""
    with _lock:
        count = _open.get(credential.key, 0)
        if count >= settings.ETHER_STREAMS_PER_CREDENTIAL:
            return False
        _open[credential.key] = count + 1
        return True


def stream_close(credential: StreamCredential) -> None:
    with _lock:
        count = _open.get(credential.key, 0) - 1
        if count > 0:
            _open[credential.key] = count
        else:
            _open.pop(credential.key, None)


def streams_open(credential: StreamCredential) -> int:
    with _lock:
        return _open.get(credential.key, 0)
