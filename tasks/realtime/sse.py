"""The SSE fallback ``GET /api/tasks/{task_id}/events`` (docs/contract.md §5).

It replays the task topic's persisted events after ``Last-Event-ID`` (or ``?after=``) and
then follows the log, each event as ``id: {seq}``, with a comment line every 15 s so
proxies keep the connection open. It reads the log rather than the channel layer: the
fallback then works on any process, whatever the layer, at the cost of a short poll.

Every ``ETHER_CREDENTIAL_RECHECK_SECONDS`` the stream re-reads its credential and ends
when the token was revoked or expired or the user deactivated (SSE has no close code: the
stream just ends, and the client's reconnect is refused 401). A credential holds at most
``ETHER_STREAMS_PER_CREDENTIAL`` streams (with its WebSockets); one more is 429.
"""

from __future__ import annotations

import asyncio
import json
import time
import weakref
from collections.abc import AsyncIterator
from typing import Any

from channels.db import database_sync_to_async
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
from tasks.events import task_topic
from tasks.realtime import hub
from tasks.realtime.streams import StreamCredential, stream_close, stream_open
from tasks.serializers.queries import TaskEventsQuery

KEEPALIVE_SECONDS = 15.0


def _position(request: Request) -> int:
    params = request.query_params.copy()
    if header := request.headers.get("Last-Event-ID"):
        params["after"] = header  # the header wins over ?after=, and is read the same way
    return validated(TaskEventsQuery, params)["after"]


async def event_stream(topic: str, after: int, credential: StreamCredential) -> AsyncIterator[str]:
    position = after
    last_beat = last_check = time.monotonic()
    replaying = True
    yield "retry: 3000\n: replaying\n\n"
    while True:
        if time.monotonic() - last_check >= settings.ETHER_CREDENTIAL_RECHECK_SECONDS:
            last_check = time.monotonic()
            if not await database_sync_to_async(hub.user_credential_valid)(
                user_id=credential.user_id, token_id=credential.token_id
            ):
                return
        frames = await database_sync_to_async(hub.frames_after)(topic, position)
        if replaying:
            # The first read of the log is the replay; later reads follow it live.
            replaying = False
            metrics.REPLAY_EVENTS.labels("sse").observe(len(frames))
        for item in frames:
            position = item["seq"]
            data = json.dumps(item, separators=(",", ":"))
            yield f"id: {position}\nevent: {item['type']}\ndata: {data}\n\n"
            metrics.FRAMES_SENT.labels("sse").inc()
        if time.monotonic() - last_beat >= KEEPALIVE_SECONDS:
            last_beat = time.monotonic()
            yield ": keepalive\n\n"
        if not frames:
            await asyncio.sleep(settings.ETHER_SSE_POLL_SECONDS)


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
        after = _position(request)
        token: Any = request.auth if isinstance(request.auth, AccessToken) else None
        credential = StreamCredential(user_id=request.user.pk, token_id=token and token.pk)
        if not stream_open(credential):
            raise Throttled(
                detail=f"This credential already holds {settings.ETHER_STREAMS_PER_CREDENTIAL} "
                "realtime streams; close one first."
            )
        body = event_stream(task_topic(task), after, credential)
        response = StreamingHttpResponse(Stream(credential, body), content_type="text/event-stream")
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"  # nginx: do not buffer the stream
        return response
