"""The process's fan-out: one channel-layer subscription per topic per process, and each
frame encoded once and handed to every local subscriber from memory.

Before, every WebSocket joined its topics' groups itself, so a frame went through the
channel layer once per subscriber (the in-memory layer deep-copies it per channel,
channels-redis writes it to Redis per channel), woke one consumer per subscriber through
its channel, and was JSON-encoded once per socket. Now the process has one ``Hub`` per
event loop with one channel of its own. The first local subscriber of a topic makes the
hub join the topic's group; the last one leaving makes it leave. ``events.publish_all``
sends one message per topic (one per process in the group); the hub's reader encodes the frame
once (``Frame.text``, and its WebSocket framing, ``Frame.prepared``) and calls
``offer`` on each local subscriber, which writes it straight to its socket or queues it.

What the subscribers keep (tasks/realtime/consumers.py, sse.py): ordering and gapless
resume by seq, and the slow-reader close. The hub itself never waits on a subscriber.

If the hub's channel-layer read fails (Redis down), it retries with a backoff; once a
read or a re-join works again it joins every topic again (a restarted Redis forgot the
memberships) and tells every subscriber to ``resync``: read what it missed from the log.
"""

from __future__ import annotations

import asyncio
import json
import logging
import weakref
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol

from autobahn.websocket.protocol import PreparedMessage
from channels.layers import get_channel_layer

from api.cancellation import stopping
from tasks.events import group_name, publish_from
from tasks.realtime import hub

log = logging.getLogger(__name__)

# Waits between tries of a group_add: after a Redis restart the first command on each
# pooled connection fails, and under a burst the pool may stay busy for a moment.
JOIN_BACKOFF = (0.05, 0.5, 2.0)
# Waits after a failed read of the hub's channel (Redis away), the last one repeated.
READ_BACKOFF = (0.1, 0.5, 1.0, 2.0)
# A membership is refreshed well within the layer's group_expiry (24 h), since the hub's
# memberships live as long as the process, not as long as one socket.
REFRESH_SECONDS = 3600.0
# How long a frame that arrived ahead of a missing seq waits for it before the hub reads
# the missing seqs from the log. Two requests on one topic commit in seq order but may
# publish in the other order (each publishes from its own thread after its commit), so
# a gap is nearly always a frame a few milliseconds behind, not a lost one.
GAP_WAIT = 0.1


class JoinFailed(Exception):
    pass


@dataclass(frozen=True)
class Frame:
    """One event frame, encoded once for every local subscriber."""

    body: dict[str, Any]

    @property
    def topic(self) -> str:
        return str(self.body["topic"])

    @property
    def seq(self) -> int:
        return int(self.body["seq"])

    @cached_property
    def text(self) -> str:
        return json.dumps(self.body, separators=(",", ":"))

    @cached_property
    def prepared(self) -> PreparedMessage:
        """The WebSocket frame as it goes on the wire (a server's frames are unmasked, so
        the bytes are the same for every socket that did not negotiate compression)."""
        return PreparedMessage(self.text.encode("utf-8"), False, False, False)


class Subscriber(Protocol):
    def offer(self, item: Frame) -> None:
        """Takes a live frame. Must not block: the hub calls every subscriber in turn."""

    def resync(self, topic: str) -> None:
        """Live frames of ``topic`` may have been lost: catch up from the log."""


@dataclass(eq=False)
class TopicEntry:
    subscribers: set[Subscriber] = field(default_factory=set)
    joined: bool = False
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    next_seq: int = 0  # the seq dispatched next (0: not known yet)
    held: dict[int, Frame] = field(default_factory=dict)  # arrived ahead of next_seq
    timer: asyncio.TimerHandle | None = None
    filling: bool = False


class Hub:
    def __init__(self, layer: Any) -> None:
        self.layer = layer
        self.channel: str | None = None
        self.topics: dict[str, TopicEntry] = {}
        self.started = asyncio.Lock()
        self.tasks: set[asyncio.Task[Any]] = set()
        self.dispatched = 0  # frames handed to local subscribers (tests, metrics)
        self.to_flush: list[Any] = []

    # --- membership --------------------------------------------------------------------
    async def subscribe(self, topic: str, subscriber: Subscriber) -> None:
        """Adds a local subscriber; returns once the process's membership of the topic's
        group is in force, so every event committed from now on reaches it (join before
        read). JoinFailed when the layer would not take the membership."""
        await self.start()
        entry = self.topics.setdefault(topic, TopicEntry())
        entry.subscribers.add(subscriber)
        try:
            async with entry.lock:
                if not entry.joined:
                    await self.join(topic)
                    entry.joined = True
                    if entry.next_seq == 0:
                        # Frames at or below the end of the log as of now are not needed
                        # live: a subscriber starts from there or replays the log.
                        try:
                            last = await hub.off_thread(hub.last_seq)(topic)
                        except Exception:
                            log.warning("could not read the end of %s", topic, exc_info=True)
                        else:
                            entry.next_seq = entry.next_seq or last + 1
        except BaseException:
            self.unsubscribe(topic, subscriber)
            raise

    def unsubscribe(self, topic: str, subscriber: Subscriber) -> None:
        entry = self.topics.get(topic)
        if entry is None:
            return
        entry.subscribers.discard(subscriber)
        if not entry.subscribers:
            self.spawn(self.leave(topic, entry))

    async def join(self, topic: str) -> None:
        assert self.channel is not None
        for wait in (*JOIN_BACKOFF, None):
            try:
                await self.layer.group_add(group_name(topic), self.channel)
                return
            except Exception:
                log.warning("group_add for %s failed", topic, exc_info=True)
                if wait is None:
                    raise JoinFailed(topic) from None
                await asyncio.sleep(wait)

    async def leave(self, topic: str, entry: TopicEntry) -> None:
        async with entry.lock:
            if entry.subscribers or not entry.joined:
                return
            try:
                await self.layer.group_discard(group_name(topic), self.channel)
            except Exception:
                # Redis is away: the membership expires by itself (group_expiry).
                log.warning("could not leave %s", topic, exc_info=True)
            entry.joined = False
            entry.next_seq = 0
            entry.held.clear()
            if not entry.subscribers and self.topics.get(topic) is entry:
                del self.topics[topic]

    # --- the reader --------------------------------------------------------------------
    async def start(self) -> None:
        if self.channel is not None:
            return
        async with self.started:
            if self.channel is None:
                channel = await self.layer.new_channel()
                publish_from(asyncio.get_running_loop())
                self.spawn(self.read(channel))
                self.spawn(self.refresh())
                self.channel = channel

    def spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def read(self, channel: str) -> None:
        failures = 0
        while True:
            try:
                message = await self.layer.receive(channel)
            except asyncio.CancelledError:
                raise
            except Exception:
                stopping()
                log.warning("the realtime hub could not read its channel", exc_info=True)
                await asyncio.sleep(READ_BACKOFF[min(failures, len(READ_BACKOFF) - 1)])
                failures += 1
                if await self.rejoin():
                    failures = 0
                continue
            try:
                self.dispatch(message)
            except Exception:
                log.exception("the realtime hub could not dispatch a frame")

    def dispatch(self, message: dict[str, Any]) -> None:
        """An ``event.frame`` message, or ``event.frames`` (the events one transaction
        committed on one topic, sent together by ``events.Outbox``)."""
        kind = message.get("type")
        bodies = [message.get("frame")] if kind == "event.frame" else message.get("frames")
        if kind not in ("event.frame", "event.frames") or not isinstance(bodies, list):
            return
        for body in bodies:
            if isinstance(body, dict):
                self.dispatch_one(body)

    def dispatch_one(self, body: dict[str, Any]) -> None:
        """Hands a frame to the topic's local subscribers, in seq order: a frame ahead of
        a missing seq is held until that one arrives, or the log is read for it."""
        topic = body.get("topic", "")
        entry = self.topics.get(topic)
        if entry is None or not entry.subscribers:
            return
        item = Frame(body)
        if entry.next_seq and item.seq < entry.next_seq:
            return  # already dispatched (or before any local subscriber's start)
        if entry.next_seq and item.seq > entry.next_seq:
            entry.held[item.seq] = item
            if entry.timer is None and not entry.filling:
                loop = asyncio.get_running_loop()
                entry.timer = loop.call_later(GAP_WAIT, self.gap_timeout, topic, entry)
            return
        self.hand_out(entry, item)
        self.release(entry)

    def flush_soon(self, subscriber: Any) -> None:
        """Subscribers that took frames in this turn of the event loop write them at its
        end, all of them in one system call per socket (a step's two events, say)."""
        if not self.to_flush:
            asyncio.get_running_loop().call_soon(self.flush)
        self.to_flush.append(subscriber)

    def flush(self) -> None:
        subscribers, self.to_flush = self.to_flush, []
        for subscriber in subscribers:
            try:
                subscriber.flush()
            except Exception:
                log.exception("a realtime subscriber failed to write its frames")

    def hand_out(self, entry: TopicEntry, item: Frame) -> None:
        entry.next_seq = item.seq + 1
        for subscriber in list(entry.subscribers):
            try:
                subscriber.offer(item)
            except Exception:
                log.exception("a realtime subscriber failed to take a frame")
        self.dispatched += 1

    def release(self, entry: TopicEntry) -> None:
        while entry.next_seq in entry.held:
            self.hand_out(entry, entry.held.pop(entry.next_seq))
        if not entry.held and entry.timer is not None:
            entry.timer.cancel()
            entry.timer = None

    def gap_timeout(self, topic: str, entry: TopicEntry) -> None:
        entry.timer = None
        log.info("%s: reading the log for seqs from %s", topic, entry.next_seq)
        if entry.held and not entry.filling:
            entry.filling = True
            self.spawn(self.fill(topic, entry))

    async def fill(self, topic: str, entry: TopicEntry) -> None:
        """Reads the seqs missing before the held frames from the log, once for every
        local subscriber. Every seq below a published one is committed (a seq is taken
        under the topic row's lock, held until commit), so the log has them."""
        try:
            while entry.held and self.topics.get(topic) is entry:
                first = min(entry.held)
                if first > entry.next_seq:
                    rows = await hub.off_thread(hub.frames_between)(
                        topic, entry.next_seq - 1, first
                    )
                    for body in rows:
                        if body["seq"] == entry.next_seq:
                            self.hand_out(entry, Frame(body))
                    if entry.next_seq < first:
                        log.warning("%s: seqs before %s are not in the log", topic, first)
                        entry.next_seq = first
                for seq in [s for s in entry.held if s < entry.next_seq]:
                    del entry.held[seq]
                self.release(entry)
        except Exception:
            # The subscribers see the gap themselves and read the log on their own.
            log.warning("the realtime hub could not fill a gap in %s", topic, exc_info=True)
            held, entry.held = sorted(entry.held.values(), key=lambda f: f.seq), {}
            for item in held:
                self.hand_out(entry, item)
        finally:
            entry.filling = False

    async def rejoin(self) -> bool:
        """After a failed read: joins every topic again, then hands out what was committed
        meanwhile from the log, one read per topic for the whole process. False while
        the layer still fails."""
        try:
            for topic, entry in list(self.topics.items()):
                if entry.joined:
                    await self.layer.group_add(group_name(topic), self.channel)
        except Exception:
            return False
        for topic, entry in list(self.topics.items()):
            if not entry.next_seq:
                for subscriber in list(entry.subscribers):
                    subscriber.resync(topic)
                continue
            try:
                rows = await hub.off_thread(hub.frames_after)(topic, entry.next_seq - 1)
            except Exception:
                log.warning("could not catch %s up from the log", topic, exc_info=True)
                continue
            for body in rows:
                if body["seq"] == entry.next_seq:
                    self.hand_out(entry, Frame(body))
            self.release(entry)
        return True

    async def refresh(self) -> None:
        expiry = getattr(self.layer, "group_expiry", 86400)
        while True:
            await asyncio.sleep(min(REFRESH_SECONDS, expiry / 2))
            for topic, entry in list(self.topics.items()):
                if entry.joined:
                    try:
                        await self.layer.group_add(group_name(topic), self.channel)
                    except Exception:
                        stopping()
                        log.warning("could not refresh %s", topic, exc_info=True)


_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Hub] = weakref.WeakKeyDictionary()


def local_hub() -> Hub:
    """The hub of the running event loop (one per process under daphne; a test's event
    loop gets its own) and of the current channel layer."""
    loop = asyncio.get_running_loop()
    layer = get_channel_layer()
    found = _hubs.get(loop)
    if found is None or found.layer is not layer:
        found = _hubs[loop] = Hub(layer)
    return found
