"""The process's fan-out (tasks/realtime/fanout.py): one channel-layer membership per topic
per process, each frame encoded once for every local subscriber; and what it must keep:
gapless resume under concurrent publishing, the slow-reader close, several processes.

The first test runs in process (Channels' communicator, the configured layer); the others
on real daphne processes with real WebSocket clients (tests/servers.py)."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import pytest
import redis
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings
from websockets.sync.client import connect

from ether_site.asgi import application
from tasks.events import group_name
from tasks.models import Event
from tasks.realtime.fanout import local_hub
from tests.servers import daphne
from tests.tasks.test_realtime_server import (
    claim,
    frame,
    raw_subscribe,
    step,
    steps_until,
    subscribe,
)

pytestmark = pytest.mark.django_db(transaction=True)


async def test_one_frame_is_encoded_once_for_every_local_subscriber(world, task, harness, claimed):
    topic = f"tasks/{task.public_id}"
    sockets = []
    for _ in range(12):
        communicator = WebsocketCommunicator(application, f"/api/realtime?token={world.token}")
        assert (await communicator.connect(timeout=5))[0]
        await communicator.send_json_to({"action": "subscribe", "topics": [topic]})
        assert (await communicator.receive_json_from(timeout=5))["type"] == "subscribed"
        sockets.append(communicator)
    hub = local_hub()
    dispatched = hub.dispatched

    response = await sync_to_async(harness.step)(task.public_id, claimed["run_id"], "Once")
    assert response.status_code == 201
    texts = []
    for communicator in sockets:
        outputs = [await communicator.receive_output(timeout=5) for _ in range(2)]
        texts.append([o["text"] for o in outputs])

    stored = await sync_to_async(
        lambda: list(Event.objects.filter(topic=topic).order_by("seq").values_list("seq", "name"))
    )()
    # Both events of the step, in seq order, to every socket...
    for pair in texts:
        assert [(json.loads(t)["seq"], json.loads(t)["type"]) for t in pair] == stored[-2:]
    # ...each encoded once: every socket was handed the very same string.
    for k in range(2):
        assert len({id(pair[k]) for pair in texts}) == 1
    # The process dispatched two frames, not 24, through one membership of the group.
    assert hub.dispatched - dispatched == 2
    assert len(hub.topics[topic].subscribers) == 12
    if settings.REDIS_URL:
        layer = get_channel_layer()
        members = await layer.connection(0).zrange(layer._group_key(group_name(topic)), 0, -1)
        assert [m.decode() for m in members] == [hub.channel]
    else:
        assert set(get_channel_layer().groups[group_name(topic)]) == {hub.channel}
    for communicator in sockets:
        await communicator.disconnect()
    await asyncio.sleep(0.1)  # the last one out leaves the group
    assert topic not in hub.topics


def test_resuming_under_concurrent_publishing_loses_and_repeats_nothing(world, task, tmp_path):
    """Two harness threads post steps as fast as they can (their publishes race, so frames
    can arrive out of seq order) while clients keep dropping and resuming with ``since``."""
    topic = f"tasks/{task.public_id}"
    # As fast as they can is past the harness rate limit (100 steps/s) since steps take
    # the fast lane, and a follower reading 7 frames a connection falls more than
    # ETHER_REPLAY_MAX (1,000) events behind, past which a resume is `recovered: false`
    # by design: this test is about resuming, so neither limit applies.
    limits = {"ETHER_RATE_HARNESS": "off", "ETHER_REPLAY_MAX": "1000000"}
    with daphne(tmp_path, **limits) as server:
        run_id = claim(server, world, task)
        stop = threading.Event()
        posted: list[int] = []

        def post(name: str) -> None:
            n = 0
            while not stop.is_set():
                posted.append(step(server, world, task, run_id, f"{name} {n}"))
                n += 1

        def follow(seen: list[int], rounds: int) -> None:
            last = Event.objects.filter(topic=topic).order_by("-seq").values_list("seq").first()
            seen.append(last[0] if last else 0)  # where it starts: not a received seq
            for _ in range(rounds):
                with connect(f"{server.ws}/api/realtime?token={world.token}") as ws:
                    subscribe(ws, topic, since=seen[-1])
                    for _ in range(7):  # then drop the socket mid-stream
                        seen.append(frame(ws)["seq"])

        writers = [threading.Thread(target=post, args=(name,)) for name in ("a", "b")]
        for writer in writers:
            writer.start()
        followers = [[] for _ in range(3)]
        readers = [threading.Thread(target=follow, args=(seen, 6)) for seen in followers]
        try:
            for reader in readers:
                reader.start()
            for reader in readers:
                reader.join(120)
        finally:
            stop.set()
            for writer in writers:
                writer.join(30)
    assert len(posted) > 20
    stored = set(Event.objects.filter(topic=topic).values_list("seq", flat=True))
    for seen in followers:
        start, got = seen[0], seen[1:]
        assert len(got) == 42
        # Every seq once, in order, from where it started: no gap, no duplicate.
        assert got == list(range(start + 1, start + 43))
        assert set(got) <= stored


def test_a_stalled_reader_is_closed_while_every_other_reader_keeps_up(world, task, tmp_path):
    topic = f"tasks/{task.public_id}"
    big = "é" * 3990  # ~24 KB a frame on the wire
    with daphne(tmp_path, ETHER_WS_MAX_BACKLOG_BYTES=str(128 * 1024)) as server:
        run_id = claim(server, world, task)
        stalled = raw_subscribe(server, world.token, topic)
        readers = [
            connect(f"{server.ws}/api/realtime?token={world.token}", open_timeout=10)
            for _ in range(5)
        ]
        try:
            for reader in readers:
                subscribe(reader, topic)
            seqs: list[list[int]] = [[] for _ in readers]
            closed = False
            for n in range(200):
                step(server, world, task, run_id, f"{n} {big}")
                # Every healthy reader has the step before the next one is posted.
                for k, reader in enumerate(readers):
                    seqs[k] += [f["seq"] for f in steps_until(reader, f"{n} {big}")]
                if "stopped reading" in server.output():
                    closed = True
                    if n > 5:
                        break
            assert closed, server.output()[-2000:]
        finally:
            for reader in readers:
                reader.close()
            stalled.close()
    assert server.output().count("stopped reading") == 1
    first = seqs[0][0]
    for got in seqs:
        assert got == list(range(first, first + len(got)))
    assert Event.objects.filter(topic=topic, seq__gte=first).count() == len(seqs[0])


needs_redis = pytest.mark.skipif(
    not settings.REDIS_URL, reason="two processes share events only through Redis (REDIS_URL)"
)


@needs_redis
def test_two_processes_on_redis_each_fan_out_to_their_own_sockets(world, task, tmp_path):
    topic = f"tasks/{task.public_id}"
    with daphne(tmp_path) as a, daphne(tmp_path) as b:
        run_id = claim(a, world, task)
        sockets: list[Any] = []
        try:
            for server in (a, b, a, b, a, b):
                ws = connect(f"{server.ws}/api/realtime?token={world.token}", open_timeout=10)
                sockets.append(ws)
                subscribe(ws, topic)
            layer = get_channel_layer()
            client = redis.Redis.from_url(settings.REDIS_URL)
            members = client.zrange(layer._group_key(group_name(topic)), 0, -1)
            # One membership per process, however many sockets it serves.
            assert len(members) == 2
            seq = step(a, world, task, run_id, "Posted to A, watched on A and B")
            frames = [steps_until(ws, "Posted to A, watched on A and B") for ws in sockets]
        finally:
            for ws in sockets:
                ws.close()
    for got in frames:
        assert [f["seq"] for f in got] == [seq, seq + 1]
        assert got[0]["user_message"] == "Posted to A, watched on A and B"
    assert Event.objects.filter(topic=topic, seq__in=[seq, seq + 1]).count() == 2
