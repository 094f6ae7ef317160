"""Compares channels-redis's two layers for the realtime hub's traffic: one event fanned
out to every subscriber of a topic (``group_send``), as a step is.

For each layer it measures, against the Redis at ``REDIS_URL`` (default the local one):
- latency: one subscriber, 500 events sent one at a time, send → receive, p50 / p99;
- fan-out: 100 subscribers of one topic, 500 events, wall time until every subscriber
  has every event, and events delivered per second;
- a stalled subscriber: one of the 100 never reads; does the layer bound what it keeps
  for it (the core layer: ``capacity`` per channel; pub/sub: no bound in the process).

Run it with (Redis running):

    DJANGO_DEBUG=1 .venv/bin/python bench/bench_channel_layers.py

The numbers and the choice they led to are in docs/realtime.md.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from typing import Any

from channels_redis.core import RedisChannelLayer
from channels_redis.pubsub import RedisPubSubChannelLayer

REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
EVENTS = 500
SUBSCRIBERS = 100
FRAME = {"type": "event.frame", "frame": {"topic": "tasks/bench", "user_message": "x" * 200}}


def layers() -> dict[str, Any]:
    return {
        "core": RedisChannelLayer(hosts=[REDIS_URL], capacity=1000, expiry=30, prefix="bench-core"),
        "pubsub": RedisPubSubChannelLayer(hosts=[REDIS_URL], prefix="bench-pubsub"),
    }


async def latency(layer: Any, group: str) -> tuple[float, float]:
    channel = await layer.new_channel()
    await layer.group_add(group, channel)
    await asyncio.sleep(0.2)  # pub/sub: let the subscription reach Redis
    samples = []
    for n in range(EVENTS):
        started = time.perf_counter()
        await layer.group_send(group, {**FRAME, "n": n})
        await layer.receive(channel)
        samples.append((time.perf_counter() - started) * 1000)
    await layer.group_discard(group, channel)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99) - 1]


async def fan_out(layer: Any, group: str) -> float:
    channels = [await layer.new_channel() for _ in range(SUBSCRIBERS)]
    for channel in channels:
        await layer.group_add(group, channel)
    await asyncio.sleep(0.5)

    async def drain(channel: str) -> None:
        for _ in range(EVENTS):
            await layer.receive(channel)

    started = time.perf_counter()
    readers = [asyncio.create_task(drain(c)) for c in channels]
    for n in range(EVENTS):
        await layer.group_send(group, {**FRAME, "n": n})
    await asyncio.wait_for(asyncio.gather(*readers), timeout=300)
    elapsed = time.perf_counter() - started
    for channel in channels:
        await layer.group_discard(group, channel)
    return elapsed


async def stalled(layer: Any, name: str, group: str) -> str:
    channel = await layer.new_channel()
    await layer.group_add(group, channel)
    await asyncio.sleep(0.2)
    for n in range(3000):
        await layer.group_send(group, {**FRAME, "n": n})
    await asyncio.sleep(0.5)
    if name == "core":
        key = layer.prefix + layer.non_local_name(channel)
        kept = await layer.connection(layer.consistent_hash(channel)).zcard(key)
        # Messages are kept per channel in Redis, up to `capacity`; the rest are dropped.
        note = f"Redis holds at most capacity (1000) for it: {kept} of 3000 kept"
    else:
        queue = layer._get_layer().channels.get(channel)
        note = f"the process holds {queue.qsize() if queue else '?'} of 3000 in memory, unbounded"
    await layer.group_discard(group, channel)
    return note


async def main() -> None:
    print(f"Redis: {REDIS_URL}; {EVENTS} events of ~{len(str(FRAME))} bytes")
    for name, layer in layers().items():
        p50, p99 = await latency(layer, f"bench.lat.{name}")
        elapsed = await fan_out(layer, f"bench.fan.{name}")
        delivered = EVENTS * SUBSCRIBERS / elapsed
        note = await stalled(layer, name, f"bench.stall.{name}")
        print(
            f"{name:7} latency p50 {p50:.2f} ms p99 {p99:.2f} ms | fan-out to "
            f"{SUBSCRIBERS}: {elapsed:.2f} s, {delivered:,.0f} deliveries/s | stalled: {note}"
        )
        await layer.flush()


if __name__ == "__main__":
    asyncio.run(main())
