"""The realtime hub: ``/api/realtime?token=`` (docs/contract.md §5).

Live frames come from the process's fan-out (``tasks/realtime/fanout.py``): one
channel-layer membership per topic per process, each frame encoded once and offered to
every local consumer, which writes it to its socket without yielding.

Resume without gaps or duplicates: on ``subscribe`` with ``since`` the consumer joins the
topic *first* (the hub's membership is in force when ``subscribe`` returns), so nothing
published from then on is missed, and buffers the live frames while it replays the log.
It then sends the replay, offers itself the buffer in seq order, and goes live. A live
frame at or below the last sent seq is a duplicate and is dropped; one that skips seqs
(two transactions published out of order, or a frame the layer dropped) is held while
the missing seqs are read from the log (one read at a time per topic), then sent after
them.

Slow readers: before each frame the consumer reads how many bytes the socket has not
yet flushed (``tasks/realtime/backlog.py``). Past ``ETHER_WS_MAX_BACKLOG_BYTES`` it closes with
4008 and ignores everything after; nothing is dropped from the middle of a stream, so a
client that reconnects with ``since`` gets every frame it missed from the log. The check
and the write are per socket and never wait, so a stalled socket delays nobody else.

Credentials: the socket joins its credential's groups (``tasks/realtime/streams.py``) and
closes with 4001 when a revoke or a deactivation is announced there, or when the
process's periodic re-check (``tasks/realtime/recheck.py``) finds the credential gone. One
credential holds at most ``ETHER_STREAMS_PER_CREDENTIAL`` streams per process; one more is
closed with 4029.

Hostile frames: every frame is parsed by the strict parser of HTTP bodies (depth,
duplicate keys, size); a bad one is a ``bad_request`` error frame, never an exception.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from api import metrics
from api.parsers import loads_strict
from tasks.realtime import hub
from tasks.realtime.backlog import wire_of
from tasks.realtime.fanout import Frame, JoinFailed, local_hub
from tasks.realtime.recheck import local_watch
from tasks.realtime.streams import StreamCredential, stream_close, stream_open

log = logging.getLogger(__name__)

MAX_TOPICS = 50
SLOW_READER = 4008
CREDENTIAL_ENDED = 4001  # the token was revoked or expired, or the user deactivated
TOO_MANY_STREAMS = 4029  # the credential already holds ETHER_STREAMS_PER_CREDENTIAL
SENT = metrics.FRAMES_SENT.labels("websocket")


@dataclass
class TopicState:
    position: int = 0  # last seq sent to this client
    replaying: bool = True
    buffer: list[Frame] = field(default_factory=list)
    behind: Frame | None = None  # the newest live frame held back by a gap
    catching_up: bool = False  # a read of the log for this topic is in flight
    resync: bool = False  # live frames may have been lost: read the log past position


class RealtimeConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        self.topics: dict[str, TopicState] = {}
        self.credential: StreamCredential | None = None
        self.closing = False
        self.wire = None
        self.outbox: deque[str | int] = deque()  # without daphne: frames, in order
        self.unwritten: list[bytes] = []  # live frames taken this turn of the loop
        self.writer: asyncio.Task[None] | None = None
        self.tasks: set[asyncio.Task[None]] = set()
        try:
            secret = hub.credential_from_query(self.scope.get("query_string", b""))
        except hub.BadCredentialParameter:
            secret = None
        self.viewer = await hub.off_thread(hub.viewer_for_secret)(secret)
        if self.viewer is None:
            await self.close()  # before accept: the handshake is refused (HTTP 403)
            return
        credential = self.viewer.credential
        self.wire = wire_of(self.base_send)
        self.hub = local_hub()
        await self.accept()
        if not stream_open(credential):
            self.closing = True
            await self.close(code=TOO_MANY_STREAMS)
            return
        self.credential = credential
        metrics.REALTIME_CONNECTIONS.labels("websocket").inc()
        for group in credential.groups:
            try:
                await self.channel_layer.group_add(group, self.channel_name)
            except Exception:
                # Without the group a revoke still ends the socket, by the re-check.
                log.warning("could not join %s", group, exc_info=True)
        self.watch = local_watch()
        self.watch.add(self, self.viewer)

    async def disconnect(self, code: int) -> None:
        credential, self.credential = getattr(self, "credential", None), None
        if credential is None:
            return
        self.closing = True
        stream_close(credential)
        metrics.REALTIME_CONNECTIONS.labels("websocket").dec()
        metrics.REALTIME_SUBSCRIPTIONS.dec(len(self.topics))
        self.watch.discard(self)
        for task in list(self.tasks):
            task.cancel()
        for topic in self.topics:
            self.hub.unsubscribe(topic, self)
        for group in credential.groups:
            try:
                await self.channel_layer.group_discard(group, self.channel_name)
            except Exception:
                # Redis is away: the membership expires by itself (group_expiry).
                log.warning("could not leave %s", group, exc_info=True)

    def spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    # --- the credential ------------------------------------------------------------
    async def credential_revoked(self, message: dict[str, Any]) -> None:
        """Sent to the credential's groups on commit of a revoke (accounts/revocation.py)."""
        await self.end_for_credential(message.get("reason", "revoked"))

    async def end_for_credential(self, reason: str) -> None:
        if self.closing:
            return
        log.info("closing a realtime client whose credential ended (%s)", reason)
        self.shut(CREDENTIAL_ENDED)

    # --- client frames -----------------------------------------------------------
    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.closing:
            return
        message = self.parse(text_data)
        if isinstance(message, str):
            await self.error("bad_request", message)
            return
        action = message.get("action")
        if action == "ping":
            await self.send_frame({"type": "pong"})
        elif action == "subscribe":
            await self.subscribe(message)
        elif action == "unsubscribe":
            await self.unsubscribe(message)
        else:
            await self.error("bad_request", "action must be subscribe, unsubscribe or ping.")

    @staticmethod
    def parse(text: str | None) -> dict[str, Any] | str:
        """The frame as an object, or why it is refused: the rules of HTTP bodies."""
        if text is None:
            return "Frames are JSON text, not binary."
        limit = settings.ETHER_WS_MAX_FRAME_BYTES
        if len(text) > limit or len(text.encode("utf-8", "surrogatepass")) > limit:
            return f"Frames are at most {limit} bytes."
        try:
            message = loads_strict(text)
        except ValueError as exc:
            return f"Frames are JSON objects: {exc}."
        if not isinstance(message, dict):
            return "Frames are JSON objects."
        return message

    def _topics_of(self, message: dict[str, Any]) -> list[str] | None:
        topics = message.get("topics")
        if (
            not isinstance(topics, list)
            or not topics
            or len(topics) > MAX_TOPICS
            or not all(isinstance(t, str) and 0 < len(t) <= 120 for t in topics)
        ):
            return None
        return list(dict.fromkeys(topics))

    async def subscribe(self, message: dict[str, Any]) -> None:
        topics = self._topics_of(message)
        since = message.get("since", {})
        if topics is None:
            await self.error("bad_request", f"topics must be a list of 1 to {MAX_TOPICS} names.")
            return
        if not isinstance(since, dict) or not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in since.values()
        ):
            await self.error("bad_request", "since maps topics to non-negative integer seqs.")
            return
        allowed = []
        for topic in topics:
            if await hub.off_thread(hub.topic_allowed)(self.viewer, topic):
                allowed.append(topic)
            else:
                await self.error("forbidden_topic", f"You may not subscribe to {topic!r}.")
        if not allowed:
            return
        recovered: dict[str, bool] = {}
        replays: dict[str, hub.Replay] = {}
        for topic in list(allowed):
            state = self.topics.get(topic)
            if state is None:
                state = self.topics[topic] = TopicState()
                # Join before reading the log: every later event reaches the buffer.
                try:
                    await self.hub.subscribe(topic, self)
                except JoinFailed:
                    del self.topics[topic]
                    allowed.remove(topic)
                    await self.error("unavailable", f"Could not subscribe to {topic!r}; retry.")
                    continue
                metrics.REALTIME_SUBSCRIPTIONS.inc()
            state.replaying = True
            if topic in since:
                replay = await hub.off_thread(hub.replay_after)(topic, since[topic])
                replays[topic] = replay
                recovered[topic] = replay.recovered
                metrics.REPLAY_EVENTS.labels("websocket").observe(len(replay.frames))
            else:
                # Live only: start from the current end of the log.
                position = await hub.off_thread(hub.last_seq)(topic)
                replays[topic] = hub.Replay(frames=[], recovered=True, position=position)
        if not allowed:
            return
        answer: dict[str, Any] = {"type": "subscribed", "topics": allowed}
        if recovered:
            answer["recovered"] = recovered
        await self.send_frame(answer)
        # From here to the end nothing yields: the replay, then the buffer, then live.
        for topic in allowed:
            state, replay = self.topics[topic], replays[topic]
            for item in replay.frames:
                self.emit(json.dumps(item, separators=(",", ":")))
            state.position = replay.position
            buffered, state.buffer, state.replaying = state.buffer, [], False
            for frame in sorted(buffered, key=lambda f: f.seq):
                self.offer(frame)

    async def unsubscribe(self, message: dict[str, Any]) -> None:
        topics = self._topics_of(message)
        if topics is None:
            await self.error("bad_request", f"topics must be a list of 1 to {MAX_TOPICS} names.")
            return
        for topic in topics:
            if self.topics.pop(topic, None) is not None:
                metrics.REALTIME_SUBSCRIPTIONS.dec()
                self.hub.unsubscribe(topic, self)
        await self.send_frame({"type": "unsubscribed", "topics": topics})

    # --- live frames, from the process's fan-out ------------------------------------
    def offer(self, item: Frame) -> None:
        """Called by the hub for each live frame of a subscribed topic; never yields."""
        state = self.topics.get(item.topic)
        if state is None or self.closing:
            return
        if state.replaying:
            state.buffer.append(item)
            return
        if item.seq <= state.position:
            return  # already sent (replay, or a gap fill)
        if item.seq == state.position + 1 and not state.catching_up:
            state.position = item.seq
            self.emit(item.text, item)
            return
        if state.behind is None or item.seq > state.behind.seq:
            state.behind = item
        self.catch_up(item.topic, state)

    def resync(self, topic: str) -> None:
        """The hub's read of the layer failed: frames may be lost; read the log."""
        state = self.topics.get(topic)
        if state is not None and not state.replaying:
            state.resync = True
            self.catch_up(topic, state)

    def catch_up(self, topic: str, state: TopicState) -> None:
        if not state.catching_up:
            state.catching_up = True
            self.spawn(self.fill(topic, state))

    async def fill(self, topic: str, state: TopicState) -> None:
        """Sends the seqs between the last sent and the held-back frame from the log, then
        the frame; repeats while more were held back meanwhile. Every seq below a published
        one is committed: a seq is taken under the topic row's lock, held until commit."""
        try:
            while self.topics.get(topic) is state and not self.closing:
                target, state.behind = state.behind, None
                if target is not None and target.seq > state.position:
                    rows = await hub.off_thread(hub.frames_between)(
                        topic, state.position, target.seq
                    )
                elif state.resync:
                    state.resync = False
                    rows = await hub.off_thread(hub.frames_after)(topic, state.position)
                    state.resync = len(rows) >= hub.FRAMES_AFTER_LIMIT
                else:
                    return
                for body in rows:
                    if body["seq"] == state.position + 1:
                        state.position = body["seq"]
                        self.emit(json.dumps(body, separators=(",", ":")))
                if target is not None and target.seq == state.position + 1:
                    state.position = target.seq
                    self.emit(target.text, target)
                elif target is not None and target.seq > state.position:
                    log.warning("%s: seqs before %s are not in the log", topic, target.seq)
        finally:
            state.catching_up = False

    # --- output -------------------------------------------------------------------
    async def error(self, code: str, detail: str) -> None:
        await self.send_frame({"type": "error", "code": code, "detail": detail})

    async def send_frame(self, body: dict[str, Any]) -> None:
        self.emit(json.dumps(body, separators=(",", ":")))

    def emit(self, text: str, frame: Frame | None = None) -> None:
        """Writes one frame (daphne), or queues it in order (any other server). A live
        frame already framed for the wire waits for the end of this turn of the event
        loop, so the frames a socket takes in one turn leave in one system call. A socket
        holding more than ETHER_WS_MAX_BACKLOG_BYTES unsent is closed with 4008."""
        if self.closing:
            return
        wire = self.wire
        if wire is None:
            self.outbox.append(text)
            if self.writer is None or self.writer.done():
                self.writer = asyncio.get_running_loop().create_task(self.drain())
            SENT.inc()
            return
        if frame is not None and wire.plain:
            if not self.unwritten:
                self.hub.flush_soon(self)
            self.unwritten.append(frame.prepared.payloadHybi)
            SENT.inc()
            return
        self.flush()
        if self.closing or not wire.open or self.slow(wire):
            return
        wire.write_text(text)
        SENT.inc()

    def flush(self) -> None:
        """Writes the live frames taken in this turn of the loop (Hub.flush)."""
        if not self.unwritten:
            return
        data, self.unwritten = b"".join(self.unwritten), []
        wire = self.wire
        if self.closing or wire is None or not wire.open or self.slow(wire):
            return
        wire.write_raw(data)

    def slow(self, wire: Any) -> bool:
        backlog = wire.pending()
        if backlog <= settings.ETHER_WS_MAX_BACKLOG_BYTES:
            return False
        log.warning("closing a realtime client that stopped reading (%d bytes unsent)", backlog)
        metrics.SLOW_READER_CLOSES.inc()
        self.shut(SLOW_READER)
        return True

    def shut(self, code: int) -> None:
        """Closes with ``code`` after every frame already written, and ignores the rest."""
        self.closing = True
        if self.wire is None:
            self.outbox.append(code)
            if self.writer is None or self.writer.done():
                self.writer = asyncio.get_running_loop().create_task(self.drain())
        else:
            self.spawn(self.close(code=code))

    async def drain(self) -> None:
        while self.outbox:
            item = self.outbox.popleft()
            if isinstance(item, int):
                await self.close(code=item)
            else:
                await self.send(text_data=item)
