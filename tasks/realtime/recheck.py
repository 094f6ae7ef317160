"""The periodic re-check of open WebSockets' credentials: one pass per process, not one
query per socket.

Every ``ETHER_CREDENTIAL_RECHECK_SECONDS`` each socket used to re-read its own credential
(a query in the process's one database thread, which also runs the requests): 1,000
sockets made 200 queries a second whatever happened. Now the process re-checks every
distinct credential of its open sockets in one batch (``hub.credentials_ended``: three
queries at most) and ends the sockets whose credential ended, with 4001 as before.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import Any, Protocol

from django.conf import settings

from tasks.realtime import hub

log = logging.getLogger(__name__)


class Watched(Protocol):
    async def end_for_credential(self, reason: str) -> None: ...


class Watch:
    def __init__(self) -> None:
        self.sockets: dict[Watched, hub.Viewer] = {}
        self.task: asyncio.Task[None] | None = None
        self.endings: set[asyncio.Task[Any]] = set()

    def add(self, socket: Watched, viewer: hub.Viewer) -> None:
        self.sockets[socket] = viewer
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self.run())

    def discard(self, socket: Watched) -> None:
        self.sockets.pop(socket, None)

    async def run(self) -> None:
        while self.sockets:
            await asyncio.sleep(settings.ETHER_CREDENTIAL_RECHECK_SECONDS)
            await self.check()

    async def check(self) -> None:
        snapshot = dict(self.sockets)
        distinct = list({viewer.credential: viewer for viewer in snapshot.values()}.values())
        if not distinct:
            return
        try:
            ended = await hub.off_thread(hub.credentials_ended)(distinct)
        except Exception:
            log.warning("could not re-check the realtime credentials", exc_info=True)
            return
        for socket, viewer in snapshot.items():
            if viewer.credential in ended and socket in self.sockets:
                task = asyncio.get_running_loop().create_task(socket.end_for_credential("recheck"))
                self.endings.add(task)
                task.add_done_callback(self.endings.discard)


_watches: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Watch] = weakref.WeakKeyDictionary()


def local_watch() -> Watch:
    loop = asyncio.get_running_loop()
    watch = _watches.get(loop)
    if watch is None:
        watch = _watches[loop] = Watch()
    return watch
