"""A harness key on the realtime hub (docs/contract.md §6): through the real consumer,
its org's ``tasks/{task_id}`` topics, never ``activity/*``, and its streams end with its
key."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from ether_site.asgi import application
from tasks.harnesses.keys import harness_app_create, harness_app_revoke
from tasks.models import RealtimeTicket
from tasks.realtime.consumers import CREDENTIAL_ENDED
from tests import factories
from tests.helpers import ask, closed_with

pytestmark = pytest.mark.django_db(transaction=True)


async def connect(secret: str) -> tuple[WebsocketCommunicator, bool]:
    communicator = WebsocketCommunicator(application, f"/api/realtime?token={secret}")
    connected, _ = await communicator.connect(timeout=5)
    return communicator, connected


def forbidden(topic: str) -> dict[str, str]:
    return {
        "type": "error",
        "code": "forbidden_topic",
        "detail": f"You may not subscribe to {topic!r}.",
    }


async def test_a_harness_key_follows_its_task_and_hears_the_answer(world, task, harness):
    run_id = (await sync_to_async(harness.claim)(task.public_id)).json()["run_id"]
    communicator, connected = await connect(world.key)
    assert connected
    topic = f"tasks/{task.public_id}"
    assert await ask(communicator, {"action": "subscribe", "topics": [topic]}) == {
        "type": "subscribed",
        "topics": [topic],
    }
    await sync_to_async(harness.interrupt)(task.public_id, run_id, "Which DB?")
    frames = [await communicator.receive_json_from(timeout=5) for _ in range(2)]
    assert {f["type"] for f in frames} == {"task.interrupted", "task.timeline"}
    answered = await sync_to_async(world.person().post)(
        f"/api/tasks/{task.public_id}/answer", {"answer": "Postgres"}
    )
    assert answered.status_code == 200
    entry = await communicator.receive_json_from(timeout=5)
    assert entry["type"] == "task.timeline" and entry["kind"] == "answer"
    assert entry["summary"] == "Postgres" and entry["topic"] == topic
    await communicator.disconnect()


async def test_activity_and_other_orgs_tasks_are_forbidden_topics(world, task):
    other = await sync_to_async(factories.make_task)(world.outsider_org)
    communicator, _ = await connect(world.key)
    for topic in ("activity/acme", "activity/globex", f"tasks/{other.public_id}", "tasks/x"):
        assert await ask(communicator, {"action": "subscribe", "topics": [topic]}) == forbidden(
            topic
        )
    # The socket stays open and its own org's task topic is still fine.
    ok = await ask(communicator, {"action": "subscribe", "topics": [f"tasks/{task.public_id}"]})
    assert ok["type"] == "subscribed"
    await communicator.disconnect()


async def test_a_ticket_minted_with_a_harness_key_is_the_apps_and_single_use(world, task):
    response = await sync_to_async(world.harness().post)("/api/realtime/tickets")
    assert response.status_code == 201
    ticket = response.json()["ticket"]
    stored = await sync_to_async(RealtimeTicket.objects.get)()
    assert stored.harness_app_id == world.app.pk and stored.user_id is None
    communicator, connected = await connect(ticket)
    assert connected
    assert await ask(communicator, {"action": "subscribe", "topics": ["activity/acme"]}) == (
        forbidden("activity/acme")
    )
    topic = f"tasks/{task.public_id}"
    assert (await ask(communicator, {"action": "subscribe", "topics": [topic]}))["type"] == (
        "subscribed"
    )
    await communicator.disconnect()
    _, again = await connect(ticket)
    assert not again


async def test_a_revoked_or_unknown_key_is_refused_at_the_handshake(world):
    await sync_to_async(harness_app_revoke)(org=world.org, app_id="builder")
    for secret in (world.key, "eth_app_" + "x" * 43):
        _, connected = await connect(secret)
        assert not connected


async def test_revoking_the_app_closes_its_open_sockets_with_4001(world):
    communicator, connected = await connect(world.key)
    assert connected
    assert await ask(communicator, {"action": "ping"}) == {"type": "pong"}
    await sync_to_async(harness_app_revoke)(org=world.org, app_id="builder")
    assert await closed_with(communicator, timeout=3) == CREDENTIAL_ENDED


async def test_a_new_key_closes_the_sockets_of_the_old_one(world):
    communicator, _ = await connect(world.key)
    issued = await sync_to_async(harness_app_create)(org=world.org, app_id="builder", rotate=True)
    assert await closed_with(communicator, timeout=3) == CREDENTIAL_ENDED
    _, old = await connect(world.key)
    assert not old
    fresh, connected = await connect(issued.key)
    assert connected
    await fresh.disconnect()


async def test_a_ticket_of_a_revoked_app_is_refused(world):
    response = await sync_to_async(world.harness().post)("/api/realtime/tickets")
    ticket = response.json()["ticket"]
    await sync_to_async(harness_app_revoke)(org=world.org, app_id="builder")
    _, connected = await connect(ticket)
    assert not connected
