"""Hostile clients and dead credentials against real daphne processes (issue 12, items 3,
6, 7a): what only a real server shows — a revoke heard by another process through Redis,
an SSE stream that ends, a burst of subscribers on one process's Redis pool, the access
log."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import urllib.error
import urllib.request
from typing import Any

import pytest
from django.conf import settings
from websockets.asyncio.client import connect as aconnect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from accounts.models import AccessToken
from accounts.services import access_token_revoke
from tasks.realtime.consumers import CREDENTIAL_ENDED
from tests.servers import Server, daphne

pytestmark = pytest.mark.django_db(transaction=True)

needs_redis = pytest.mark.skipif(
    not settings.REDIS_URL, reason="two processes share a revoke only through Redis (REDIS_URL)"
)


def pinged(ws: ClientConnection) -> None:
    ws.send(json.dumps({"action": "ping"}))
    assert json.loads(ws.recv(timeout=10)) == {"type": "pong"}


def close_code_within(ws: ClientConnection, seconds: float) -> int | None:
    """Waits for the server to close ``ws``; its close code, or None if it stayed open."""
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            ws.recv(timeout=max(0.01, deadline - time.monotonic()))
    except TimeoutError:
        return None
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else None
    return None


@needs_redis
def test_revoking_a_token_closes_its_sockets_on_every_process(world, tmp_path):
    # A re-check far away: only the broadcast through Redis can close them in time.
    slow_recheck = {"ETHER_CREDENTIAL_RECHECK_SECONDS": "600"}
    with (
        daphne(tmp_path, **slow_recheck) as a,
        daphne(tmp_path, **slow_recheck) as b,
        connect(f"{a.ws}/api/realtime?token={world.token}", open_timeout=10) as on_a,
        connect(f"{b.ws}/api/realtime?token={world.token}", open_timeout=10) as on_b,
        connect(f"{b.ws}/api/realtime?token={world.outsider_token}", open_timeout=10) as other,
    ):
        pinged(on_a)
        pinged(on_b)
        started = time.monotonic()
        access_token_revoke(token=AccessToken.objects.get(user=world.user))
        assert close_code_within(on_a, 5) == CREDENTIAL_ENDED
        assert close_code_within(on_b, 5) == CREDENTIAL_ENDED
        elapsed = time.monotonic() - started
        pinged(other)  # another credential's socket is untouched
    assert elapsed < 5, elapsed


def test_an_open_sse_stream_ends_when_its_token_is_revoked(world, task, tmp_path):
    with daphne(tmp_path, ETHER_CREDENTIAL_RECHECK_SECONDS="0.5") as server:
        request = urllib.request.Request(
            f"{server.http}/api/tasks/{task.public_id}/events",
            headers={"Authorization": f"Bearer {world.token}"},
        )
        with urllib.request.urlopen(request, timeout=20) as stream:
            assert stream.readline() == b"retry: 3000\n"
            started = time.monotonic()
            access_token_revoke(token=AccessToken.objects.get(user=world.user))
            rest = stream.read()  # returns once the server ends the stream
            elapsed = time.monotonic() - started
        status, _ = server.call("GET", f"/api/tasks/{task.public_id}", world.token)
    assert elapsed < 5, (elapsed, rest)
    assert status == 401


def test_a_revoked_socket_cannot_subscribe_after_the_revoke(world, tmp_path):
    with daphne(tmp_path) as server:
        with connect(f"{server.ws}/api/realtime?token={world.token}", open_timeout=10) as ws:
            pinged(ws)
            access_token_revoke(token=AccessToken.objects.get(user=world.user))
            assert close_code_within(ws, 8) == CREDENTIAL_ENDED
        with pytest.raises(InvalidStatus):
            connect(f"{server.ws}/api/realtime?token={world.token}", open_timeout=10)


# --- item 6: a burst of subscribers on one process -------------------------------------------
async def burst(server: Server, secret: str, count: int) -> list[Any]:
    """``count`` clients connect and subscribe at once; each one's answer or close code."""

    async def one(n: int) -> Any:
        try:
            async with aconnect(
                f"{server.ws}/api/realtime?token={secret}", open_timeout=60, close_timeout=5
            ) as ws:
                await ws.send(json.dumps({"action": "subscribe", "topics": ["activity/acme"]}))
                answer = json.loads(await asyncio.wait_for(ws.recv(), 60))
                await ws.send(json.dumps({"action": "ping"}))
                pong = json.loads(await asyncio.wait_for(ws.recv(), 60))
                return answer["type"] if pong == {"type": "pong"} else pong
        except ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else "dropped"

    return await asyncio.gather(*(one(n) for n in range(count)))


@needs_redis
def test_300_clients_subscribing_at_once_on_one_process_all_subscribe(world, tmp_path):
    env = {"ETHER_STREAMS_PER_CREDENTIAL": "1000", "ETHER_LOG_LEVEL": "WARNING"}
    with daphne(tmp_path, **env) as server:
        started = time.monotonic()
        answers = asyncio.run(burst(server, world.token, 300))
        elapsed = time.monotonic() - started
        output = server.output()
    assert answers.count("subscribed") == 300, (
        {a: answers.count(a) for a in set(map(str, answers))},
        output[-3000:],
    )
    assert "Too many connections" not in output
    print(f"300 subscribers in {elapsed:.1f} s")


# --- item 7a: the access log and percent-encoded names --------------------------------------
def test_a_percent_encoded_token_parameter_is_refused_and_not_logged(world, tmp_path):
    with daphne(tmp_path) as server:
        for query in (f"%74oken={world.token}", f"t%6Fken={world.token}"):
            with pytest.raises(InvalidStatus) as refused:
                connect(f"{server.ws}/api/realtime?{query}", open_timeout=10)
            assert refused.value.response.status_code == 403
            with contextlib.suppress(urllib.error.HTTPError):
                urllib.request.urlopen(f"{server.http}/api/tasks?{query}", timeout=10).close()
        encoded = "".join(f"%{b:02X}" for b in world.token.encode())
        with contextlib.suppress(urllib.error.HTTPError):
            urllib.request.urlopen(f"{server.http}/api/tasks?q={encoded}", timeout=10).close()
        output = server.output()
    assert world.token not in output and encoded not in output
    assert world.token.split("_")[-1] not in output
    assert "%74oken=[redacted]" in output and "q=[redacted]" in output
