"""channels-redis's core layer, without its per-connection leak, with a blocking pool, and
with a socket timeout longer than its blocking reads.

Its pool: channels-redis builds redis-py's plain ``ConnectionPool``, which raises
"Too many connections" the moment more than ``max_connections`` (100 by default) commands
are in flight; 100 browsers subscribing in the same second were closed with 1011. A
``BlockingConnectionPool`` makes the extra commands wait for a free connection, up to its
``timeout`` (``ETHER_REDIS_POOL_SIZE``, ``ETHER_REDIS_POOL_TIMEOUT``).

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
from channels_redis.utils import create_pool
from redis import asyncio as aioredis

from api.cancellation import stopping


class EtherRedisChannelLayer(RedisChannelLayer):
    def create_pool(self, index: int) -> Any:
        host = dict(self.hosts[index])
        if "address" not in host:
            return create_pool(host)  # sentinel or host/port hosts: channels-redis's own
        # redis-py 8 reads with a 5 s socket timeout by default, the same 5 s that
        # ``receive`` blocks in BZPOPMIN: an idle receive then raced its own timeout and
        # failed with TimeoutError every few seconds (seen in the fan-out benchmark).
        host.setdefault("socket_timeout", self.brpop_timeout + 5)
        return aioredis.BlockingConnectionPool.from_url(host.pop("address"), **host)

    async def receive(self, channel: str) -> Any:
        try:
            return await super().receive(channel)
        except asyncio.CancelledError:
            self.receive_buffer.pop(channel, None)
            raise

    async def _brpop_with_clean(self, index: int, channel: str, timeout: int) -> Any:
        # A cancelled receive must end (api.cancellation): channels-redis would block in
        # BZPOPMIN again, every 5 s, forever, so a consumer that left never finished and
        # an event loop's shutdown waited for it (cancelled receives stuck within 5 tries
        # in a stress run; the Postgres+Redis suite hung twice in a test loop's teardown).
        stopping()
        member = await super()._brpop_with_clean(index, channel, timeout)
        # A message popped now stays in the backup queue and goes back to the channel's
        # queue at the next read (channels-redis's cleanup script): nothing is lost.
        stopping()
        return member

    async def ping(self) -> None:
        """Every Redis host answers PING (``/readyz``)."""
        for index in range(len(self.hosts)):
            await self.connection(index).ping()
