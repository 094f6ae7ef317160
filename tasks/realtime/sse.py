"""The SSE fallback ``GET /api/tasks/{task_id}/events`` (docs/contract.md §5), and
``GET /api/activity/events`` for the viewer's org's ``activity/{org}`` topic (the grid's).

It replays the task topic's persisted events after ``Last-Event-ID`` (or ``?after=``) and
then follows the log, each event as ``id: {seq}``, with a comment line every 15 s so
proxies keep the connection open. Live frames come from the process's fan-out
(``tasks/realtime/fanout.py``, the same frames the WebSockets get, encoded once); the log
is read for the replay, for a gap, and every ``ETHER_SSE_POLL_SECONDS`` when no frame
came, so the fallback keeps working without a channel layer (Redis down).

Every ``ETHER_CREDENTIAL_RECHECK_SECONDS`` the stream re-reads its credential and ends
when the token was revoked or expired or the user deactivated (SSE has no close code: the
stream just ends, and the client's reconnect is refused 401). A credential holds at most
``ETHER_STREAMS_PER_CREDENTIAL`` streams (with its WebSockets); one more is 429.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import weakref
from collections.abc import AsyncIterator
from typing import Any

from django.conf import settings
from django.http import StreamingHttpResponse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.exceptions import Throttled
from rest_framework.request import Request

from accounts.auth import UserAPIView
from accounts.models import AccessToken
from api import metrics
from api.fields import validated
from api.negotiation import AnyAcceptNegotiation
from api.views import problems
from tasks import selectors
from tasks.events import activity_topic, task_topic
from tasks.realtime import hub
from tasks.realtime.fanout import Frame, local_hub
from tasks.realtime.streams import StreamCredential, stream_close, stream_open
from tasks.serializers.queries import TaskEventsQuery

KEEPALIVE_SECONDS = 15.0
SENT = metrics.FRAMES_SENT.labels("sse")
log = logging.getLogger(__name__)


def _position(request: Request) -> int:
    params = request.query_params.copy()
    if header := request.headers.get("Last-Event-ID"):
        params["after"] = header  # the header wins over ?after=, and is read the same way
    return validated(TaskEventsQuery, params)["after"]


class Follower:
    """The live side of one SSE stream: frames from the process's fan-out, kept in memory
    (already encoded) until the stream's loop takes them."""

    def __init__(self) -> None:
        self.frames: list[Frame] = []
        self.wake = asyncio.Event()

    def offer(self, item: Frame) -> None:
        self.frames.append(item)
        self.wake.set()

    def resync(self, topic: str) -> None:
        self.wake.set()

    def take(self, position: int) -> tuple[list[tuple[int, str, str]], bool]:
        """The frames that follow ``position`` without a gap, and whether the log must be
        read (a seq is missing: out of order, or dropped by the layer)."""
        frames, self.frames = sorted(self.frames, key=lambda f: f.seq), []
        self.wake.clear()
        out = []
        for item in frames:
            if item.seq <= position:
                continue
            if item.seq != position + 1:
                return out, True
            position = item.seq
            out.append((item.seq, str(item.body["type"]), item.text))
        return out, False

    async def wait(self, timeout: float) -> bool:
        """True when frames arrived, False after ``timeout`` (then the log is read)."""
        try:
            await asyncio.wait_for(self.wake.wait(), timeout)
        except TimeoutError:
            return False
        return True


async def event_stream(topic: str, after: int, credential: StreamCredential) -> AsyncIterator[str]:
    """Replays the log after ``after``, then follows the topic: from memory when the
    process's fan-out delivers, from the log (every ``ETHER_SSE_POLL_SECONDS``) when it
    does not (a lost frame, or no channel layer: Redis down)."""
    follower = Follower()
    fanout = local_hub()
    try:
        await fanout.subscribe(topic, follower)  # before the first read of the log
    except Exception:
        log.warning("SSE on %s follows the log only", topic, exc_info=True)
    try:
        position = after
        last_beat = last_check = time.monotonic()
        replaying = read_log = True
        yield "retry: 3000\n: replaying\n\n"
        while True:
            if time.monotonic() - last_check >= settings.ETHER_CREDENTIAL_RECHECK_SECONDS:
                last_check = time.monotonic()
                if not await hub.off_thread(hub.user_credential_valid)(
                    user_id=credential.user_id, token_id=credential.token_id
                ):
                    return
            if read_log:
                rows = await hub.off_thread(hub.frames_after)(topic, position)
                if replaying:
                    # The first read of the log is the replay; later reads follow it.
                    replaying = False
                    metrics.REPLAY_EVENTS.labels("sse").observe(len(rows))
                batch = [(f["seq"], f["type"], json.dumps(f, separators=(",", ":"))) for f in rows]
                read_log = len(rows) >= hub.FRAMES_AFTER_LIMIT
            else:
                batch, read_log = follower.take(position)
            for seq, kind, data in batch:
                if seq <= position:
                    continue
                position = seq
                yield f"id: {seq}\nevent: {kind}\ndata: {data}\n\n"
                SENT.inc()
            if time.monotonic() - last_beat >= KEEPALIVE_SECONDS:
                last_beat = time.monotonic()
                yield ": keepalive\n\n"
            if not batch and not read_log:
                read_log = not await follower.wait(settings.ETHER_SSE_POLL_SECONDS)
    finally:
        fanout.unsubscribe(topic, follower)


def _stream_ended(credential: StreamCredential) -> None:
    stream_close(credential)
    metrics.REALTIME_CONNECTIONS.labels("sse").dec()


class Stream:
    """The stream's body, holding one of the credential's slots. Django calls ``close``
    when the response is done (the client went away, or it was never sent); the finalizer
    covers a response dropped without either, so a slot is given back exactly once."""

    def __init__(self, credential: StreamCredential, body: AsyncIterator[str]) -> None:
        self.body = body
        metrics.REALTIME_CONNECTIONS.labels("sse").inc()
        self._release = weakref.finalize(self, _stream_ended, credential)

    def __aiter__(self) -> AsyncIterator[str]:
        return self.body

    def close(self) -> None:
        self._release()


class TaskEventsAPI(UserAPIView):
    content_negotiation_class = AnyAcceptNegotiation

    @extend_schema(
        tags=["realtime"],
        summary="Server-sent events of the task topic: replay, then live",
        description=(
            "text/event-stream: `id: {seq}`, `event: {type}`, `data: {frame}`; resumes after "
            "the Last-Event-ID header or ?after=; a comment line every 15 s."
        ),
        parameters=[
            TaskEventsQuery,
            OpenApiParameter("Last-Event-ID", int, OpenApiParameter.HEADER, required=False),
        ],
        responses={
            200: OpenApiResponse(description="text/event-stream"),
            **problems(400, 404, 429, s429="The credential holds its cap of open streams"),
        },
    )
    def get(self, request: Request, task_id: str) -> StreamingHttpResponse:
        task = selectors.task_get(org=self.org(request), task_id=task_id)
        return stream_response(request, task_topic(task))


def stream_response(request: Request, topic: str) -> StreamingHttpResponse:
    """The SSE answer for one topic the caller may see, holding one of its stream slots."""
    after = _position(request)
    token: Any = request.auth if isinstance(request.auth, AccessToken) else None
    credential = StreamCredential(user_id=request.user.pk, token_id=token and token.pk)
    if not stream_open(credential):
        raise Throttled(
            detail=f"This credential already holds {settings.ETHER_STREAMS_PER_CREDENTIAL} "
            "realtime streams; close one first."
        )
    body = event_stream(topic, after, credential)
    response = StreamingHttpResponse(Stream(credential, body), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx: do not buffer the stream
    return response


class ActivityEventsAPI(UserAPIView):
    """The org's task grid as SSE: the pages' fallback when WebSockets cannot pass."""

    content_negotiation_class = AnyAcceptNegotiation

    @extend_schema(
        tags=["realtime"],
        summary="Server-sent events of the org's activity topic: replay, then live",
        description=(
            "text/event-stream of `activity/{org}` (`activity.list_updated`), as "
            "`/api/tasks/{task_id}/events` for a task."
        ),
        parameters=[
            TaskEventsQuery,
            OpenApiParameter("Last-Event-ID", int, OpenApiParameter.HEADER, required=False),
        ],
        responses={
            200: OpenApiResponse(description="text/event-stream"),
            **problems(400, 429, s429="The credential holds its cap of open streams"),
        },
    )
    def get(self, request: Request) -> StreamingHttpResponse:
        return stream_response(request, activity_topic(self.org(request)))
