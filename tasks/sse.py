"""The SSE fallback ``GET /api/tasks/{task_id}/events`` (CONTRACT §5).

It replays the task topic's persisted events after ``Last-Event-ID`` (or ``?after=``) and
then follows the log, each event as ``id: {seq}``, with a comment line every 15 s so
proxies keep the connection open. It reads the log rather than the channel layer: the
fallback then works on any process, whatever the layer, at the cost of a short poll.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

from channels.db import database_sync_to_async
from django.conf import settings
from django.http import StreamingHttpResponse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.request import Request

from corpus.errors import ValidationFailed
from corpus.http.negotiation import AnyAcceptNegotiation
from corpus.http.views import UserAPIView, problems
from tasks import realtime, selectors
from tasks.events import task_topic

KEEPALIVE_SECONDS = 15.0


def _position(request: Request) -> int:
    raw = request.headers.get("Last-Event-ID") or request.query_params.get("after") or "0"
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 0:
        raise ValidationFailed({"after": ["Last-Event-ID and after are seqs: integers >= 0."]})
    return value


async def event_stream(topic: str, after: int) -> AsyncIterator[str]:
    position = after
    last_beat = time.monotonic()
    yield "retry: 3000\n: replaying\n\n"
    while True:
        frames = await database_sync_to_async(realtime.frames_after)(topic, position)
        for item in frames:
            position = item["seq"]
            data = json.dumps(item, separators=(",", ":"))
            yield f"id: {position}\nevent: {item['type']}\ndata: {data}\n\n"
        if time.monotonic() - last_beat >= KEEPALIVE_SECONDS:
            last_beat = time.monotonic()
            yield ": keepalive\n\n"
        if not frames:
            await asyncio.sleep(settings.ETHER_SSE_POLL_SECONDS)


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
            OpenApiParameter("after", int, required=False),
            OpenApiParameter("Last-Event-ID", int, OpenApiParameter.HEADER, required=False),
        ],
        responses={200: OpenApiResponse(description="text/event-stream"), **problems(400, 404)},
    )
    def get(self, request: Request, task_id: str) -> StreamingHttpResponse:
        task = selectors.task_get(org=self.org(request), task_id=task_id)
        after = _position(request)
        response = StreamingHttpResponse(
            event_stream(task_topic(task), after), content_type="text/event-stream"
        )
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"  # nginx: do not buffer the stream
        return response
