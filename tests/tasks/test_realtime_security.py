"""Hostile clients and dead credentials on the realtime hub (issue 12, items 3, 5, 6, 7),
through Channels' WebsocketCommunicator and the configured channel layer (in-memory by
default, Redis with REDIS_URL), and the SSE route through the test client."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.test import Client

from accounts.models import AccessToken
from accounts.services import access_token_revoke
from ether_site.asgi import application
from tasks.realtime.consumers import CREDENTIAL_ENDED, TOO_MANY_STREAMS, RealtimeConsumer
from tasks.services import ticket_create
from tests.helpers import ask, closed_with, problem

pytestmark = pytest.mark.django_db(transaction=True)


async def connect(query: str) -> tuple[WebsocketCommunicator, bool]:
    communicator = WebsocketCommunicator(application, f"/api/realtime?{query}")
    connected, _ = await communicator.connect(timeout=5)
    return communicator, connected


def the_token(user: Any) -> AccessToken:
    return AccessToken.objects.get(user=user)


# --- item 3: revoking a credential ends its open streams -----------------------------------
async def test_revoking_the_token_closes_its_open_socket_with_4001(world):
    communicator, connected = await connect(f"token={world.token}")
    assert connected
    assert (await ask(communicator, {"action": "ping"})) == {"type": "pong"}
    token = await sync_to_async(the_token)(world.user)
    await sync_to_async(access_token_revoke)(token=token)
    assert await closed_with(communicator, timeout=3) == CREDENTIAL_ENDED


async def test_the_admin_revoke_action_closes_the_tokens_sockets(world):
    communicator, _ = await connect(f"token={world.token}")

    def revoke_in_admin() -> None:
        admin = get_user_model().objects.create_superuser("root", "root@x.test", "pw")
        client = Client()
        client.force_login(admin)
        token = the_token(world.user)
        response = client.post(
            "/admin/accounts/accesstoken/",
            {"action": "revoke_tokens", "_selected_action": [token.pk]},
        )
        assert response.status_code == 302, response.content[:300]

    await sync_to_async(revoke_in_admin)()
    assert await closed_with(communicator, timeout=3) == CREDENTIAL_ENDED


async def test_a_socket_opened_with_a_ticket_ends_with_the_token_that_minted_it(world):
    def mint() -> str:
        return ticket_create(user=world.user, token=the_token(world.user)).ticket

    communicator, connected = await connect(f"token={await sync_to_async(mint)()}")
    assert connected
    token = await sync_to_async(the_token)(world.user)
    await sync_to_async(access_token_revoke)(token=token)
    assert await closed_with(communicator, timeout=3) == CREDENTIAL_ENDED


async def test_a_ticket_minted_with_a_token_revoked_since_is_refused(world):
    def mint_then_revoke() -> str:
        token = the_token(world.user)
        ticket = ticket_create(user=world.user, token=token).ticket
        access_token_revoke(token=token)
        return ticket

    _, connected = await connect(f"token={await sync_to_async(mint_then_revoke)()}")
    assert not connected


async def test_deactivating_the_user_closes_every_socket_of_theirs(world):
    by_token, _ = await connect(f"token={world.token}")
    issued = await sync_to_async(ticket_create)(user=world.user)  # a browser's
    by_ticket, connected = await connect(f"token={issued.ticket}")
    assert connected
    bystander, _ = await connect(f"token={world.outsider_token}")

    def deactivate() -> None:
        user = get_user_model().objects.get(pk=world.user.pk)
        user.is_active = False
        user.save()

    await sync_to_async(deactivate)()
    assert await closed_with(by_token, timeout=3) == CREDENTIAL_ENDED
    assert await closed_with(by_ticket, timeout=3) == CREDENTIAL_ENDED
    assert (await ask(bystander, {"action": "ping"})) == {"type": "pong"}
    await bystander.disconnect()


async def test_the_recheck_ends_a_socket_whose_revoke_was_never_announced(world, settings):
    settings.ETHER_CREDENTIAL_RECHECK_SECONDS = 0.2
    communicator, _ = await connect(f"token={world.token}")
    # A bulk update sends no signal and no broadcast: only the re-check can notice.
    await sync_to_async(
        lambda: get_user_model().objects.filter(pk=world.user.pk).update(is_active=False)
    )()
    assert await closed_with(communicator, timeout=3) == CREDENTIAL_ENDED


async def test_a_harness_key_opens_a_websocket_but_no_sse_stream(world, task):
    """Harness keys use the realtime hub (docs/contract.md §6, test_realtime_harness.py);
    the SSE fallback stays a person's."""
    communicator, connected = await connect(f"token={world.key}")
    assert connected
    await communicator.disconnect()
    response = await sync_to_async(
        lambda: Client().get(
            f"/api/tasks/{task.public_id}/events", HTTP_AUTHORIZATION=f"Bearer {world.key}"
        )
    )()
    assert response.status_code == 401


# --- item 5: hostile frames ------------------------------------------------------------------
@pytest.mark.parametrize(
    "raw",
    [
        "[" * 100000,  # deeper than the recursion limit: used to close with 1011
        "[" * 70 + "]" * 70,  # parses, but deeper than the body limit of 64
        '{"action": "ping", "action": "subscribe"}',  # a key twice
        '{"action": "ping", "n": NaN}',
        '{"action": "ping", "n": 1e999}',
        '{"action": "ping", "s": "\\u0000"}',
        '"ping"',
        "x" * (64 * 1024 + 1),  # over ETHER_WS_MAX_FRAME_BYTES
    ],
    ids=["deep", "deeper-than-64", "duplicate-key", "nan", "inf", "nul", "not-object", "big"],
)
async def test_a_hostile_frame_is_bad_request_and_a_later_subscribe_works(world, raw):
    communicator, _ = await connect(f"token={world.token}")
    await communicator.send_to(text_data=raw)
    answer = await communicator.receive_json_from(timeout=5)
    assert answer["type"] == "error" and answer["code"] == "bad_request", answer
    topic = "activity/acme"
    subscribed = await ask(communicator, {"action": "subscribe", "topics": [topic]})
    assert subscribed == {"type": "subscribed", "topics": [topic]}
    await communicator.disconnect()


async def test_a_binary_frame_is_bad_request(world):
    communicator, _ = await connect(f"token={world.token}")
    await communicator.send_to(bytes_data=b'{"action": "ping"}')
    answer = await communicator.receive_json_from(timeout=5)
    assert answer["code"] == "bad_request"
    assert (await ask(communicator, {"action": "ping"})) == {"type": "pong"}
    await communicator.disconnect()


# --- item 6: a group_add that keeps failing -------------------------------------------------
async def test_a_join_that_keeps_failing_is_an_error_frame_not_a_crash(world, monkeypatch):
    monkeypatch.setattr("tasks.realtime.fanout.JOIN_BACKOFF", (0.01, 0.01))
    communicator, _ = await connect(f"token={world.token}")
    layer = get_channel_layer()
    real_group_add = layer.group_add
    failures = {"left": 3}

    async def flaky_group_add(group: str, channel: str) -> None:
        # Fault injection: the pool is exhausted (or Redis away) for the next three tries.
        if group.startswith("ev.") and failures["left"] > 0:
            failures["left"] -= 1
            raise ConnectionError("No connection available.")
        await real_group_add(group, channel)

    monkeypatch.setattr(layer, "group_add", flaky_group_add)
    topic = "activity/acme"
    answer = await ask(communicator, {"action": "subscribe", "topics": [topic]})
    assert answer["type"] == "error" and answer["code"] == "unavailable", answer
    # The socket is fine, and the next try (the pool is free again) subscribes.
    answer = await ask(communicator, {"action": "subscribe", "topics": [topic]})
    assert answer == {"type": "subscribed", "topics": [topic]}
    await communicator.disconnect()


async def test_one_failed_try_of_group_add_is_retried(world, monkeypatch):
    communicator, _ = await connect(f"token={world.token}")
    layer = get_channel_layer()
    real_group_add = layer.group_add
    failures = {"left": 1}

    async def flaky_group_add(group: str, channel: str) -> None:
        if group.startswith("ev.") and failures["left"] > 0:
            failures["left"] -= 1
            raise ConnectionError("Too many connections")
        await real_group_add(group, channel)

    monkeypatch.setattr(layer, "group_add", flaky_group_add)
    answer = await ask(communicator, {"action": "subscribe", "topics": ["activity/acme"]})
    assert answer == {"type": "subscribed", "topics": ["activity/acme"]}
    await communicator.disconnect()


# --- item 7a: credentials in disguise ---------------------------------------------------------
@pytest.mark.parametrize(
    "query",
    ["%74oken={token}", "t%6Fken={token}", "TOKEN={token}", "token={token}&token={token}"],
)
async def test_a_percent_encoded_or_repeated_credential_parameter_is_refused(world, query):
    _, connected = await connect(query.format(token=world.token))
    assert not connected


async def test_a_percent_encoded_value_is_still_accepted(world):
    encoded = "".join(f"%{b:02X}" for b in world.token.encode())
    communicator, connected = await connect(f"token={encoded}")
    assert connected
    await communicator.disconnect()


# --- item 7b: a cap on streams per credential --------------------------------------------------
async def test_one_socket_past_the_cap_is_closed_with_4029(world, settings):
    settings.ETHER_STREAMS_PER_CREDENTIAL = 2
    first, _ = await connect(f"token={world.token}")
    second, _ = await connect(f"token={world.token}")
    third, connected = await connect(f"token={world.token}")
    assert connected  # accepted, then closed with a code the client can read
    assert await closed_with(third) == TOO_MANY_STREAMS
    other, _ = await connect(f"token={world.outsider_token}")  # another credential
    assert (await ask(other, {"action": "ping"})) == {"type": "pong"}
    await first.disconnect()
    await asyncio.sleep(0.1)
    fourth, _ = await connect(f"token={world.token}")
    assert (await ask(fourth, {"action": "ping"})) == {"type": "pong"}
    for communicator in (second, fourth, other):
        await communicator.disconnect()


def test_an_sse_stream_past_the_cap_is_429_and_a_closed_one_frees_its_slot(world, task, settings):
    settings.ETHER_STREAMS_PER_CREDENTIAL = 1
    client = Client()
    url = f"/api/tasks/{task.public_id}/events"
    auth = {"HTTP_AUTHORIZATION": f"Bearer {world.token}"}
    stream = client.get(url, **auth)
    assert stream.status_code == 200 and stream.streaming
    problem(client.get(url, **auth), 429, "throttled")
    stream.close()  # what the server does when the client goes away
    again = client.get(url, **auth)
    assert again.status_code == 200
    again.close()


def test_the_sockets_and_streams_of_a_credential_share_one_cap(world, task, settings):
    settings.ETHER_STREAMS_PER_CREDENTIAL = 1

    async def open_socket() -> WebsocketCommunicator:
        communicator, _ = await connect(f"token={world.token}")
        return communicator

    async def scenario() -> None:
        communicator = await open_socket()
        response = await sync_to_async(
            lambda: Client().get(
                f"/api/tasks/{task.public_id}/events",
                HTTP_AUTHORIZATION=f"Bearer {world.token}",
            )
        )()
        problem(response, 429, "throttled")
        await communicator.disconnect()

    asyncio.run(scenario())


def test_frames_are_parsed_by_the_body_parser() -> None:
    # The consumer has no JSON rules of its own: the same answer as a POST body gets.
    assert RealtimeConsumer.parse('{"a": 1, "a": 2}') == (
        "Frames are JSON objects: duplicate key 'a'."
    )
