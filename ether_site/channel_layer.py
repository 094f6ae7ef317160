"""channels-redis's core layer, without its per-connection leak.

``RedisChannelLayer.receive`` keeps a queue per channel in ``receive_buffer``. When a
consumer goes away, Channels cancels its ``receive``; the layer removes the channel's
queue only if the cancellation lands in one of its two waits, not while that receive
holds the process-wide receive lock (it is the one reading Redis for every consumer of
the process). Then the queue stays forever: one per closed WebSocket (about 8 KB a
connection in our soak run; channels_redis issues #212 and #384). A cancelled receive
means the consumer is gone and its channel name is never used again, so its queue, and
anything in it, is dropped here.
"""

from __future__ import annotations

import asyncio
from typing import Any

from channels_redis.core import RedisChannelLayer


class EtherRedisChannelLayer(RedisChannelLayer):
    async def receive(self, channel: str) -> Any:
        try:
            return await super().receive(channel)
        except asyncio.CancelledError:
            self.receive_buffer.pop(channel, None)
            raise
