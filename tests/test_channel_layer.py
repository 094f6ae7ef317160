"""The Redis channel layer leaves nothing behind for a consumer that went away
(``ether_site/channel_layer.py``). Needs Redis: runs in the Postgres + Redis suite."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid

import pytest
from channels_redis.core import RedisChannelLayer
from django.conf import settings

from ether_site.channel_layer import EtherRedisChannelLayer

pytestmark = pytest.mark.skipif(not settings.REDIS_URL, reason="needs Redis (REDIS_URL)")


async def cancel_while_holding_the_receive_lock(layer: RedisChannelLayer) -> tuple[str, str]:
    """Two consumers of one process: the first in holds the receive lock and reads Redis
    for both; it goes away (its receive is cancelled) while the other one stays."""
    gone, staying = await layer.new_channel(), await layer.new_channel()
    first = asyncio.create_task(layer.receive(gone))
    await asyncio.sleep(0.2)
    second = asyncio.create_task(layer.receive(staying))
    await asyncio.sleep(0.2)
    first.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await first
    # The one that stays still gets its messages.
    await layer.send(staying, {"type": "event.frame", "n": 1})
    assert (await asyncio.wait_for(second, 10))["n"] == 1
    return gone, staying


async def test_a_closed_consumer_leaves_no_receive_buffer_behind():
    layer = EtherRedisChannelLayer(hosts=[settings.REDIS_URL], prefix=f"t{uuid.uuid4().hex}")
    try:
        gone, staying = await cancel_while_holding_the_receive_lock(layer)
        assert gone not in layer.receive_buffer
        assert staying not in layer.receive_buffer
        assert len(layer.receive_buffer) == 0
    finally:
        await layer.flush()


async def test_the_stock_layer_keeps_a_queue_per_closed_consumer():
    """Why the subclass exists (channels_redis #212, #384). If this starts failing, the
    upstream layer was fixed and ``EtherRedisChannelLayer`` can go."""
    layer = RedisChannelLayer(hosts=[settings.REDIS_URL], prefix=f"t{uuid.uuid4().hex}")
    try:
        gone, _ = await cancel_while_holding_the_receive_lock(layer)
        assert gone in layer.receive_buffer
    finally:
        await layer.flush()


async def test_a_cancelled_receive_always_ends():
    """A consumer that leaves has its receive cancelled; redis-py can lose that
    cancellation inside a read, and channels-redis then blocked in BZPOPMIN again, every
    5 s, forever: an event loop's shutdown waited for it (the suite hung there). Without
    the fix, one of the first few of these stuck; each must now end within a BZPOPMIN
    (a lost cancellation is found when the read it was lost in returns: up to 5 s)."""
    layer = EtherRedisChannelLayer(hosts=[settings.REDIS_URL], prefix=f"t{uuid.uuid4().hex}")
    delays = [0, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.05]  # the cancel lands at each stage
    try:
        for attempt in range(3 * len(delays)):
            receive = asyncio.create_task(layer.receive(await layer.new_channel()))
            await asyncio.sleep(delays[attempt % len(delays)])
            receive.cancel()
            done, _ = await asyncio.wait([receive], timeout=layer.brpop_timeout + 5)
            assert done, f"receive {attempt} did not end after its cancellation"
            assert receive.cancelled()
        assert len(layer.receive_buffer) == 0
    finally:
        await layer.flush()


DELAYS = [0, 0.0002, 0.0005, 0.001, 0.002]


async def lost_when_the_reader_leaves(layer: RedisChannelLayer, tries: int) -> int:
    """Two consumers of one process; the first in holds the receive lock, blocked in
    BZPOPMIN for both. It goes away just as a message for the other one is sent: how many
    of ``tries`` such messages the one that stays never got (within 3 s)."""
    lost = 0
    for n in range(tries):
        gone, staying = await layer.new_channel(), await layer.new_channel()
        first = asyncio.create_task(layer.receive(gone))
        await asyncio.sleep(0.05)
        second = asyncio.create_task(layer.receive(staying))
        await asyncio.sleep(0.05)
        # The message goes out, and the read's cancellation lands a moment later: as
        # Redis pops it for the blocked read, or as its reply comes back.
        sent = asyncio.create_task(layer.send(staying, {"type": "event.frame", "n": n}))
        await asyncio.sleep(DELAYS[n % len(DELAYS)])
        first.cancel()
        await sent
        with contextlib.suppress(asyncio.CancelledError):
            await first
        try:
            assert (await asyncio.wait_for(second, 3))["n"] == n
        except TimeoutError:
            lost += 1
    return lost


async def test_a_message_read_as_its_reader_leaves_reaches_its_consumer():
    """The receive that reads Redis for the whole process is cancelled (its socket closed)
    while BZPOPMIN waits, as a message for another consumer arrives: Redis may already
    have popped it for that read. Cancelled with the receive, redis-py dropped the reply,
    and the message was lost (a healthy socket missed a frame as a slow one beside it was
    closed): 10 of these 40 were, on this machine. The read now runs to its end and
    puts back what it took."""
    layer = EtherRedisChannelLayer(hosts=[settings.REDIS_URL], prefix=f"t{uuid.uuid4().hex}")
    try:
        assert await lost_when_the_reader_leaves(layer, 40) == 0
    finally:
        await layer.flush()


async def test_group_send_reaches_every_member_as_channels_redis_does():
    """``group_send`` in two round trips keeps channels-redis's rules: every member
    channel gets the message (process-local ones of two processes, and a plain one), a
    member past ``group_expiry`` is dropped from the group and gets nothing, a channel's
    expired messages are dropped before its capacity is checked, and a channel at
    capacity gets nothing more."""
    prefix = f"t{uuid.uuid4().hex}"
    one, two = (
        EtherRedisChannelLayer(hosts=[settings.REDIS_URL], prefix=prefix, capacity=1)
        for _ in range(2)
    )
    group, message = "ev.tasks.t1", {"type": "event.frame", "n": 7}
    try:
        a, b = await one.new_channel(), await two.new_channel()
        for channel in (a, b, "stale.messages", "full.queue"):
            await one.group_add(group, channel)
        redis = one.connection(0)
        # A member that joined before group_expiry and never renewed.
        await redis.zadd(one._group_key(group), {"gone.member": time.time() - 2 * 86400})
        # An expired message in one plain channel, a fresh one filling the other.
        await redis.zadd(f"{prefix}stale.messages", {b"old": time.time() - 1000})
        await one.send("full.queue", {"type": "event.frame", "n": 1})

        await one.group_send(group, message)

        for layer, channel in ((one, a), (two, b), (one, "stale.messages")):
            got = await asyncio.wait_for(layer.receive(channel), 10)
            assert got == message, (channel, got)
        assert (await asyncio.wait_for(one.receive("full.queue"), 10))["n"] == 1
        assert await redis.zcard(f"{prefix}full.queue") == 0  # the group's message was not queued
        members = {m.decode() for m in await redis.zrange(one._group_key(group), 0, -1)}
        assert members == {a, b, "stale.messages", "full.queue"}
    finally:
        await one.flush()


async def test_a_process_queue_is_read_without_a_backup_and_a_message_put_back_keeps_its_place():
    """A process's own queue (every ``new_channel``) is read with BZPOPMIN alone: after
    its messages are received no backup queue exists. A message taken by a read whose
    receive was cancelled goes back at its own score, ahead of a message sent after it,
    with the queue's expiry."""
    layer = EtherRedisChannelLayer(hosts=[settings.REDIS_URL], prefix=f"t{uuid.uuid4().hex}")
    try:
        channel = await layer.new_channel()
        key = layer.prefix + layer.non_local_name(channel)
        redis = layer.connection(0)
        for n in (1, 2):
            await layer.send(channel, {"type": "event.frame", "n": n})
        assert [(await asyncio.wait_for(layer.receive(channel), 10))["n"] for _ in "ab"] == [1, 2]
        assert not await redis.exists(layer._backup_channel_name(key))

        for n in (3, 4):
            await layer.send(channel, {"type": "event.frame", "n": n})
        taken = await layer._read(0, key, 1)  # as a read whose receive is then cancelled
        assert taken is not None
        await layer._requeue(0, key, *taken)
        assert 0 < await redis.ttl(key) <= layer.expiry
        assert [(await asyncio.wait_for(layer.receive(channel), 10))["n"] for _ in "ab"] == [3, 4]
        assert not await redis.exists(key)
    finally:
        await layer.flush()
