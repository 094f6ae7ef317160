"""The realtime hub: ``/api/realtime?token=`` (docs/contract.md §5).

Resume without gaps or duplicates: on ``subscribe`` with ``since`` the consumer joins the
topic's group *first*, so nothing published from then on is missed, and buffers the live
frames while it replays the log. It then sends the replay, flushes the buffer skipping
every seq already sent, and goes live. A live frame that skips a seq (two transactions
published out of order) pulls the missing seqs from the log before it is sent; a frame
at or below the last sent seq is a duplicate and is dropped.

Slow readers: before each frame the consumer reads how many bytes the socket has not
yet flushed (``tasks/realtime/backlog.py``). Past ``ETHER_WS_MAX_BACKLOG_BYTES`` it closes with
4008 and ignores everything after; nothing is dropped from the middle of a stream, so a
client that reconnects with ``since`` gets every frame it missed from the log.

Credentials: the socket joins its credential's groups (``tasks/realtime/streams.py``) and closes
with 4001 when a revoke or a deactivation is announced there, or when its periodic
re-check finds the credential gone. One credential holds at most
``ETHER_STREAMS_PER_CREDENTIAL`` streams per process; one more is closed with 4029.

Hostile frames: every frame is parsed by the strict parser of HTTP bodies (depth,
duplicate keys, size); a bad one is a ``bad_request`` error frame, never an exception.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from api import metrics
from api.parsers import loads_strict
from tasks.events import group_name
from tasks.realtime import hub
from tasks.realtime.backlog import pending_bytes, transport_of
from tasks.realtime.streams import StreamCredential, stream_close, stream_open

log = logging.getLogger(__name__)

MAX_TOPICS = 50
SLOW_READER = 4008
CREDENTIAL_ENDED = 4001  # the token was revoked or expired, or the user deactivated
TOO_MANY_STREAMS = 4029  # the credential already holds ETHER_STREAMS_PER_CREDENTIAL
# Waits between tries of a group_add: after a Redis restart the first command on each
# pooled connection fails, and under a burst the pool may stay busy for a moment.
JOIN_BACKOFF = (0.05, 0.5, 2.0)


class JoinFailed(Exception):
    pass


@dataclass
class TopicState:
    position: int = 0  # last seq sent to this client
    replaying: bool = True
    buffer: list[dict[str, Any]] = field(default_factory=list)


class RealtimeConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        self.topics: dict[str, TopicState] = {}
        self.credential: StreamCredential | None = None
        self.closing = False
        try:
            secret = hub.credential_from_query(self.scope.get("query_string", b""))
        except hub.BadCredentialParameter:
            secret = None
        self.viewer = await database_sync_to_async(hub.viewer_for_secret)(secret)
        if self.viewer is None:
            await self.close()  # before accept: the handshake is refused (HTTP 403)
            return
        credential = self.viewer.credential
        self.transport = transport_of(self.base_send)
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
        self.recheck = asyncio.create_task(self.recheck_credential())

    async def disconnect(self, code: int) -> None:
        credential, self.credential = getattr(self, "credential", None), None
        if credential is None:
            return
        stream_close(credential)
        metrics.REALTIME_CONNECTIONS.labels("websocket").dec()
        metrics.REALTIME_SUBSCRIPTIONS.dec(len(self.topics))
        self.recheck.cancel()
        groups = [group_name(topic) for topic in self.topics] + credential.groups
        for group in groups:
            try:
                await self.channel_layer.group_discard(group, self.channel_name)
            except Exception:
                # Redis is away: the membership expires by itself (group_expiry).
                log.warning("could not leave %s", group, exc_info=True)

    async def join(self, topic: str) -> None:
        """Joins the topic's group, retrying with a backoff: a Redis restart fails the first
        command on each pooled connection, and a burst can keep the pool busy past its
        timeout. JoinFailed once every try failed; the socket itself is fine."""
        for wait in (*JOIN_BACKOFF, None):
            try:
                await self.channel_layer.group_add(group_name(topic), self.channel_name)
                return
            except Exception:
                log.warning("group_add for %s failed", topic, exc_info=True)
                if wait is None:
                    raise JoinFailed(topic)
                await asyncio.sleep(wait)

    # --- the credential ------------------------------------------------------------
    async def credential_revoked(self, message: dict[str, Any]) -> None:
        """Sent to the credential's groups on commit of a revoke (accounts/revocation.py)."""
        await self.end_for_credential(message.get("reason", "revoked"))

    async def recheck_credential(self) -> None:
        """The safety net behind the broadcast (a lost message, a bulk update, an expiry)."""
        interval = settings.ETHER_CREDENTIAL_RECHECK_SECONDS
        while not self.closing:
            await asyncio.sleep(interval)
            try:
                valid = await database_sync_to_async(hub.credential_valid)(viewer=self.viewer)
            except Exception:
                log.warning("could not re-check a realtime credential", exc_info=True)
                continue
            if not valid:
                await self.end_for_credential("recheck")
                return

    async def end_for_credential(self, reason: str) -> None:
        if self.closing:
            return
        self.closing = True
        log.info("closing a realtime client whose credential ended (%s)", reason)
        await self.close(code=CREDENTIAL_ENDED)

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
            if await database_sync_to_async(hub.topic_allowed)(self.viewer, topic):
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
                    await self.join(topic)
                except JoinFailed:
                    del self.topics[topic]
                    allowed.remove(topic)
                    await self.error("unavailable", f"Could not subscribe to {topic!r}; retry.")
                    continue
                metrics.REALTIME_SUBSCRIPTIONS.inc()
            state.replaying = True
            if topic in since:
                replay = await database_sync_to_async(hub.replay_after)(topic, since[topic])
                replays[topic] = replay
                recovered[topic] = replay.recovered
                metrics.REPLAY_EVENTS.labels("websocket").observe(len(replay.frames))
            else:
                # Live only: start from the current end of the log.
                position = await database_sync_to_async(hub.last_seq)(topic)
                replays[topic] = hub.Replay(frames=[], recovered=True, position=position)
        if not allowed:
            return
        answer: dict[str, Any] = {"type": "subscribed", "topics": allowed}
        if recovered:
            answer["recovered"] = recovered
        await self.send_frame(answer)
        for topic in allowed:
            state, replay = self.topics[topic], replays[topic]
            for item in replay.frames:
                await self.send_frame(item)
            state.position = replay.position
            buffered, state.buffer, state.replaying = state.buffer, [], False
            for item in sorted(buffered, key=lambda f: f["seq"]):
                await self.deliver(topic, item)

    async def unsubscribe(self, message: dict[str, Any]) -> None:
        topics = self._topics_of(message)
        if topics is None:
            await self.error("bad_request", f"topics must be a list of 1 to {MAX_TOPICS} names.")
            return
        for topic in topics:
            if self.topics.pop(topic, None) is not None:
                metrics.REALTIME_SUBSCRIPTIONS.dec()
                try:
                    await self.channel_layer.group_discard(group_name(topic), self.channel_name)
                except Exception:
                    # Its frames are dropped anyway (no state); the membership expires.
                    log.warning("could not leave %s", topic, exc_info=True)
        await self.send_frame({"type": "unsubscribed", "topics": topics})

    # --- events from the channel layer --------------------------------------------
    async def event_frame(self, message: dict[str, Any]) -> None:
        item = message["frame"]
        state = self.topics.get(item["topic"])
        if state is None or self.closing:
            return
        if state.replaying:
            state.buffer.append(item)
            return
        await self.deliver(item["topic"], item)

    async def deliver(self, topic: str, item: dict[str, Any]) -> None:
        state = self.topics.get(topic)
        if state is None or item["seq"] <= state.position:
            return  # already sent (replay, or a gap fill)
        if item["seq"] > state.position + 1:
            missing = await database_sync_to_async(hub.frames_between)(
                topic, state.position, item["seq"]
            )
            for earlier in missing:
                await self.send_frame(earlier)
                state.position = earlier["seq"]
        await self.send_frame(item)
        state.position = item["seq"]

    # --- output -------------------------------------------------------------------
    async def error(self, code: str, detail: str) -> None:
        await self.send_frame({"type": "error", "code": code, "detail": detail})

    async def send_frame(self, body: dict[str, Any]) -> None:
        if self.closing:
            return
        backlog = pending_bytes(self.transport)
        if backlog > settings.ETHER_WS_MAX_BACKLOG_BYTES:
            self.closing = True
            log.warning("closing a realtime client that stopped reading (%d bytes unsent)", backlog)
            metrics.SLOW_READER_CLOSES.inc()
            await self.close(code=SLOW_READER)
            return
        await self.send(text_data=json.dumps(body, separators=(",", ":")))
        metrics.FRAMES_SENT.labels("websocket").inc()
