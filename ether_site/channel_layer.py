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

And fewer round trips to Redis on a live frame's way (issue 18): ``group_send`` in two
instead of four, and a process's own queue read with ``BZPOPMIN`` alone, without the
backup queue that only guards a message another reader could take (``_read``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from functools import partial
from typing import Any

from channels_redis.core import RedisChannelLayer
from channels_redis.utils import create_pool
from redis import asyncio as aioredis

from api.cancellation import stopping

log = logging.getLogger(__name__)


# channels-redis's cleanup script (RedisChannelLayer._brpop_with_clean): the backup queue's
# messages back in front of the channel's queue, in order.
RESTORE_SCRIPT = """
    local backed_up = redis.call('ZRANGE', ARGV[2], 0, -1, 'WITHSCORES')
    for i = #backed_up, 1, -2 do
        redis.call('ZADD', ARGV[1], backed_up[i], backed_up[i - 1])
    end
    redis.call('DEL', ARGV[2])
"""


# channels-redis's group_send script (inline in RedisChannelLayer.group_send), with the
# expiry of each channel's old messages, which it sends as a command of its own before
# it, done first in the same script: every channel of the group on one Redis host in one
# round trip. ARGV: the messages, then the capacities (one per key), the time, the expiry.
GROUP_SEND_SCRIPT = """
    local over_capacity = 0
    local current_time = ARGV[#ARGV - 1]
    local expiry = ARGV[#ARGV]
    for i=1,#KEYS do
        redis.call('ZREMRANGEBYSCORE', KEYS[i], 0, math.floor(current_time) - expiry)
        if redis.call('ZCOUNT', KEYS[i], '-inf', '+inf') < tonumber(ARGV[i + #KEYS]) then
            redis.call('ZADD', KEYS[i], current_time, ARGV[i])
            redis.call('EXPIRE', KEYS[i], expiry)
        else
            over_capacity = over_capacity + 1
        end
    end
    return over_capacity
"""


def _process_queue(key: str) -> bool:
    """Whether a Redis key is a process's own queue (``prefix`` + ``specific.…!``)."""
    return key.endswith("!")


class EtherRedisChannelLayer(RedisChannelLayer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._restoring: set[asyncio.Task[None]] = set()

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
        # The read itself is not cancelled with the receive. A consumer's receive reads
        # Redis for every channel of the process, and one cancelled in BZPOPMIN (its
        # socket closed) dropped the command's reply with its connection: a message Redis
        # had already taken off the queue, often another consumer's, was lost. A
        # healthy socket then missed the frame of the step posted as a slow reader beside
        # it was closed (tests/tasks/test_realtime_server.py, 1 run in 10 on a busy
        # machine). Now the read runs to its end (at most ``brpop_timeout``) and what it
        # took goes back to the queue at once.
        pop = asyncio.ensure_future(self._read(index, channel, timeout))
        try:
            popped = await asyncio.shield(pop)
            stopping()
        except asyncio.CancelledError:
            pop.add_done_callback(partial(self._put_back, index, channel))
            raise
        return None if popped is None else popped[0]

    async def _read(self, index: int, channel: str, timeout: int) -> tuple[bytes, float] | None:
        """One read of ``channel``'s queue: the message and its score, or None.

        channels-redis reads every queue in four round trips: a script that puts back
        what its backup queue holds, ``BZPOPMIN``, a ``ZADD`` of the message to the
        backup before handing it over, and a ``ZPOPMIN`` of the backup after. The backup
        is there for a reader that dies holding a message another reader could take. A
        process's own queue (``specific.…!``, where every channel of ``new_channel``
        lives: the realtime hub's, the claim-next waiters', the health check's) has no
        other reader, and dies with its process; the ``ZADD`` only sat between Redis
        handing a live frame over and its dispatch to the watchers (issue 18,
        docs/performance.md §8 "Eighth pass"). So that queue is read with ``BZPOPMIN``
        alone, and a read whose receive was cancelled puts its message back itself
        (``_put_back``). Any other queue is read as channels-redis reads it."""
        if not _process_queue(channel):
            member = await super()._brpop_with_clean(index, channel, timeout)
            return None if member is None else (member, 0.0)  # its backup holds it
        result = await self.connection(index).bzpopmin(channel, timeout=timeout)
        if result is None:
            return None
        _, member, score = result
        return member, float(score)

    async def _clean_receive_backup(self, index: int, channel: str) -> None:
        if not _process_queue(channel):  # a process's own queue keeps no backup (_read)
            await super()._clean_receive_backup(index, channel)

    def _put_back(self, index: int, channel: str, pop: asyncio.Future[Any]) -> None:
        """A read whose receive was cancelled took ``pop``'s message: back to the
        channel's queue now, not at the next read."""
        if pop.cancelled() or pop.exception() is not None or pop.result() is None:
            return
        member, score = pop.result()
        if _process_queue(channel):
            restoring = self._requeue(index, channel, member, score)
        else:
            restoring = self._restore(index, channel)
        task = asyncio.ensure_future(restoring)
        self._restoring.add(task)
        task.add_done_callback(self._restoring.discard)

    async def _requeue(self, index: int, channel: str, member: bytes, score: float) -> None:
        # At its own score: in front of anything sent after it, as it was. With the
        # queue's expiry, which a send sets and a queue emptied by the read had lost.
        try:
            async with self.connection(index).pipeline(transaction=True) as pipe:
                pipe.zadd(channel, {member: score})
                pipe.expire(channel, int(self.expiry))
                await pipe.execute()
        except Exception:
            log.warning("could not put a message back on %s", channel, exc_info=True)

    async def _restore(self, index: int, channel: str) -> None:
        # channels-redis's own cleanup script, which it runs before each read. A message
        # another reader of the process popped and has not yet cleared from the backup
        # may go back too and come twice, as channels-redis allows.
        try:
            backup = self._backup_channel_name(channel)
            await self.connection(index).eval(RESTORE_SCRIPT, 0, channel, backup)
        except Exception:
            log.warning("could not put a message back on %s", channel, exc_info=True)

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        """channels-redis's ``group_send`` in two round trips to Redis, not four.

        Each live frame is one group_send (tasks.events.Outbox), and channels-redis
        makes it four commands, one after the other: drop the group's expired members,
        read the members, drop each member channel's expired messages, then the script
        that queues the message. Here the first two go in one pipeline and the last two
        in one script (``GROUP_SEND_SCRIPT``). The four took 0.72 ms (p50) of each frame's
        way to its watchers at 20 steps/s, where the process idles between steps and
        every round trip wakes both ends (issue 18, docs/performance.md §8 "Eighth
        pass"). The same keys, members, expiries and capacity as channels-redis."""
        assert self.require_valid_group_name(group), "Group name not valid"
        key = self._group_key(group)
        async with self.connection(self.consistent_hash(group)).pipeline(transaction=False) as pipe:
            pipe.zremrangebyscore(key, min=0, max=int(time.time()) - self.group_expiry)
            pipe.zrange(key, 0, -1)
            _, members = await pipe.execute()
        channels = [member.decode("utf8") for member in members]
        by_host, messages, capacities = self._map_channel_keys_to_connection(channels, message)
        for index, keys in by_host.items():
            args = [messages[k] for k in keys] + [capacities[k] for k in keys]
            over = await self.connection(index).eval(
                GROUP_SEND_SCRIPT, len(keys), *keys, *args, time.time(), int(self.expiry)
            )
            if over > 0:
                log.info("%s of %s channels over capacity in group %s", over, len(channels), group)

    async def ping(self) -> None:
        """Every Redis host answers PING (``/readyz``)."""
        for index in range(len(self.hosts)):
            await self.connection(index).ping()
