"""The realtime hub through Channels' WebsocketCommunicator, against the real database
and the configured channel layer (in-memory by default, Redis with REDIS_URL)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.utils import timezone

from accounts.services import access_token_revoke
from ether_site.asgi import application
from tasks.models import RealtimeTicket
from tasks.realtime import hub
from tasks.services import ticket_create

pytestmark = pytest.mark.django_db(transaction=True)


async def connect(secret: str | None) -> tuple[WebsocketCommunicator, bool]:
    path = "/api/realtime" + (f"?token={secret}" if secret else "")
    communicator = WebsocketCommunicator(application, path)
    connected, _ = await communicator.connect(timeout=5)
    return communicator, connected


async def receive(communicator: WebsocketCommunicator) -> dict:
    return await communicator.receive_json_from(timeout=5)


async def subscribe(communicator, topics, since=None) -> dict:
    frame = {"action": "subscribe", "topics": topics}
    if since is not None:
        frame["since"] = since
    await communicator.send_json_to(frame)
    return await receive(communicator)


async def collect(communicator, count: int) -> list[dict]:
    return [await receive(communicator) for _ in range(count)]


async def post_step(harness, task_id, run_id, message):
    response = await sync_to_async(harness.step)(task_id, run_id, message)
    assert response.status_code == 201
    return response.json()["seq"]


@pytest.fixture
def run_id(claimed):
    return claimed["run_id"]


async def test_missing_bad_and_revoked_tokens_are_refused(world):
    for secret in (None, "nope", "eth_pat_unknown", "eth_app_unknown"):
        _, connected = await connect(secret)
        assert not connected, secret
    token = await sync_to_async(lambda: world.user.access_tokens.get())()
    await sync_to_async(access_token_revoke)(token=token)
    _, connected = await connect(world.token)
    assert not connected


async def test_ticket_is_single_use_and_expires(world):
    issued = await sync_to_async(ticket_create)(user=world.user)
    communicator, connected = await connect(issued.ticket)
    assert connected
    await communicator.disconnect()
    _, connected = await connect(issued.ticket)
    assert not connected
    stale = await sync_to_async(ticket_create)(user=world.user)
    await sync_to_async(
        lambda: RealtimeTicket.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    )()
    _, connected = await connect(stale.ticket)
    assert not connected


async def test_topics_of_another_org_are_forbidden_without_closing(world, task):
    communicator, connected = await connect(world.outsider_token)
    assert connected
    for topic in (f"tasks/{task.public_id}", "activity/acme", "tasks/nope", "admin/all"):
        answer = await subscribe(communicator, [topic])
        assert answer == {
            "type": "error",
            "code": "forbidden_topic",
            "detail": f"You may not subscribe to {topic!r}.",
        }
    await communicator.send_json_to({"action": "ping"})
    assert await receive(communicator) == {"type": "pong"}
    assert (await subscribe(communicator, ["activity/globex"]))["type"] == "subscribed"
    await communicator.disconnect()


@pytest.mark.parametrize(
    "raw",
    [
        "not json",
        "[1, 2]",
        '{"action": "dance"}',
        '{"action": "subscribe"}',
        '{"action": "subscribe", "topics": []}',
        '{"action": "subscribe", "topics": [7]}',
        '{"action": "subscribe", "topics": ["activity/acme"], "since": {"activity/acme": -1}}',
        '{"action": "subscribe", "topics": ["activity/acme"], "since": []}',
        '{"action": "unsubscribe", "topics": "x"}',
    ],
)
async def test_bad_frames_get_an_error_and_the_socket_stays_open(world, raw):
    communicator, _ = await connect(world.token)
    await communicator.send_to(text_data=raw)
    answer = await receive(communicator)
    assert answer["type"] == "error" and answer["code"] == "bad_request"
    await communicator.send_json_to({"action": "ping"})
    assert await receive(communicator) == {"type": "pong"}
    await communicator.disconnect()


async def test_step_arrives_live_with_the_contract_frame(world, task, harness, run_id):
    communicator, _ = await connect(world.token)
    topic = f"tasks/{task.public_id}"
    assert await subscribe(communicator, [topic]) == {"type": "subscribed", "topics": [topic]}
    seq = await post_step(harness, task.public_id, run_id, "Making the changes…")
    step, timeline = await collect(communicator, 2)
    assert step["event"] == step["type"] == "os.harness.step"
    assert step["topic"] == topic and step["task_id"] == task.public_id and step["seq"] == seq
    assert step["user_message"] == "Making the changes…" and step["run_id"] == run_id
    assert {"phase", "internal_label", "ts"} <= set(step)
    assert timeline["type"] == "task.timeline" and timeline["kind"] == "step"
    assert timeline["seq"] == seq + 1
    await communicator.disconnect()


async def test_interrupt_and_activity_frames(world, task, harness, run_id):
    communicator, _ = await connect(world.token)
    await subscribe(communicator, [f"tasks/{task.public_id}", "activity/acme"])
    response = await sync_to_async(harness.interrupt)(task.public_id, run_id, "Which DB?")
    assert response.status_code == 200
    frames = await collect(communicator, 3)
    by_type = {f["type"]: f for f in frames}
    assert by_type["task.interrupted"]["question"] == "Which DB?"
    assert by_type["task.interrupted"]["run_id"] == run_id
    assert by_type["activity.list_updated"]["status"] == "paused"
    assert by_type["activity.list_updated"]["task"]["id"] == task.public_id
    assert by_type["activity.list_updated"]["topic"] == "activity/acme"
    await communicator.disconnect()


async def test_delivery_and_timeline_frames_of_a_submitted_result(world, task, harness, run_id):
    communicator, _ = await connect(world.token)
    topic = f"tasks/{task.public_id}"
    await subscribe(communicator, [topic])
    pr = {
        "number": 7,
        "url": f"{task.repo.url}/pull/7",
        "branch": "ether/fix-flaky-test",
    }
    response = await sync_to_async(harness.result)(
        task.public_id,
        run_id,
        status="submitted",
        artifact={"pr": pr},
        working_summary="test_widget passes 100 times in a row; no sleep() added.",
    )
    assert response.status_code == 200, response.content
    timeline, delivered = await collect(communicator, 2)
    assert timeline["type"] == "task.timeline" and timeline["kind"] == "result"
    assert timeline["status"] == "submitted" and timeline["run_id"] == run_id
    assert delivered["event"] == delivered["type"] == "task.delivered"
    assert delivered["seq"] == timeline["seq"] + 1 and delivered["topic"] == topic
    assert delivered["task_id"] == task.public_id and delivered["run_id"] == run_id
    assert delivered["status"] == "submitted" and delivered["version"] == 1
    types = [b["type"] for b in delivered["blocks"]]
    assert types[0] == "outcome" and types[-1] == "actions" and "hero" in types
    assert {"ts", "seq"} <= set(delivered)
    await communicator.disconnect()


async def test_unsubscribe_stops_the_frames(world, task, harness, run_id):
    communicator, _ = await connect(world.token)
    topic = f"tasks/{task.public_id}"
    await subscribe(communicator, [topic])
    await communicator.send_json_to({"action": "unsubscribe", "topics": [topic]})
    assert await receive(communicator) == {"type": "unsubscribed", "topics": [topic]}
    await post_step(harness, task.public_id, run_id, "unseen")
    assert await communicator.receive_nothing(timeout=0.3)
    await communicator.disconnect()


async def test_since_replays_then_goes_live_without_gaps_or_duplicates(
    world, task, harness, run_id
):
    topic = f"tasks/{task.public_id}"
    for n in range(3):
        await post_step(harness, task.public_id, run_id, f"before {n}")
    communicator, _ = await connect(world.token)
    answer = await subscribe(communicator, [topic], since={topic: 0})
    assert answer["recovered"] == {topic: True}
    last = await sync_to_async(hub.last_seq)(topic)
    replayed = await collect(communicator, last)
    await post_step(harness, task.public_id, run_id, "after")
    live = await collect(communicator, 2)
    seqs = [f["seq"] for f in replayed + live]
    assert seqs == list(range(1, last + 3))
    assert await communicator.receive_nothing(timeout=0.3)
    await communicator.disconnect()


@pytest.mark.parametrize("commit_during", ["before_read", "after_read"])
async def test_event_committing_during_the_replay_arrives_once(
    world, task, harness, run_id, monkeypatch, commit_during
):
    """Widens the race: a step commits while the replay query runs, either before the
    query reads (it is in the replay *and* in the live buffer) or after (only live)."""
    topic = f"tasks/{task.public_id}"
    await post_step(harness, task.public_id, run_id, "before")
    real = hub.replay_after

    def slow_replay(topic_name, since, **kwargs):
        if commit_during == "before_read":
            assert harness.step(task.public_id, run_id, "during").status_code == 201
            return real(topic_name, since, **kwargs)
        replay = real(topic_name, since, **kwargs)
        assert harness.step(task.public_id, run_id, "during").status_code == 201
        return replay

    monkeypatch.setattr(hub, "replay_after", slow_replay)
    communicator, _ = await connect(world.token)
    await subscribe(communicator, [topic], since={topic: 0})
    await post_step(harness, task.public_id, run_id, "after")
    last = await sync_to_async(hub.last_seq)(topic)
    frames = await collect(communicator, last)
    assert [f["seq"] for f in frames] == list(range(1, last + 1))
    messages = [f["user_message"] for f in frames if f["type"] == "os.harness.step"]
    assert messages == ["before", "during", "after"]
    assert await communicator.receive_nothing(timeout=0.3)
    await communicator.disconnect()


async def test_too_much_missed_is_not_recovered(world, task, harness, run_id, settings):
    settings.ETHER_REPLAY_MAX = 2
    topic = f"tasks/{task.public_id}"
    for n in range(3):
        await post_step(harness, task.public_id, run_id, f"missed {n}")
    communicator, _ = await connect(world.token)
    answer = await subscribe(communicator, [topic], since={topic: 0})
    assert answer["recovered"] == {topic: False}
    assert await communicator.receive_nothing(timeout=0.3)
    seq = await post_step(harness, task.public_id, run_id, "fresh")
    step, _ = await collect(communicator, 2)
    assert step["seq"] == seq and step["user_message"] == "fresh"
    await communicator.disconnect()
