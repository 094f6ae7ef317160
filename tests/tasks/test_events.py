"""The event log: persisted in the change's transaction, published only after commit."""

from __future__ import annotations

import logging

import pytest
from asgiref.sync import async_to_sync
from channels.layers import channel_layers, get_channel_layer
from django.db import transaction

from tasks import events
from tasks.models import Event, EventTopic


def listen(topic: str):
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(events.group_name(topic), channel)
    return layer, channel


def receive(layer, channel):
    async def once():
        import asyncio

        return await asyncio.wait_for(layer.receive(channel), timeout=5)

    return async_to_sync(once)()


@pytest.mark.django_db(transaction=True)
def test_step_is_published_after_commit_with_the_contract_frame(world, task, harness):
    run_id = harness.claim(task.public_id).json()["run_id"]
    layer, channel = listen(f"tasks/{task.public_id}")
    response = harness.step(task.public_id, run_id, "Pulling context…", internal_label="ctx")
    message = receive(layer, channel)
    frame = message["frame"]
    assert message["type"] == "event.frame"
    assert frame["event"] == frame["type"] == "os.harness.step"
    assert frame["topic"] == f"tasks/{task.public_id}"
    assert frame["seq"] == response.json()["seq"]
    assert frame["task_id"] == task.public_id
    assert frame["ts"].endswith("Z")
    assert (frame["phase"], frame["user_message"], frame["internal_label"], frame["run_id"]) == (
        "coding_agent",
        "Pulling context…",
        "ctx",
        run_id,
    )
    stored = Event.objects.get(topic=frame["topic"], seq=frame["seq"])
    assert events.frame(stored) == frame


@pytest.mark.django_db(transaction=True)
def test_rolled_back_change_stores_and_publishes_nothing(world, task):
    topic = f"tasks/{task.public_id}"
    layer, channel = listen(topic)
    before = Event.objects.count()
    last_seq = EventTopic.objects.get(name=topic).last_seq
    with pytest.raises(RuntimeError), transaction.atomic():
        events.on_task(task=task, name=events.STEP, payload={"phase": "x"})
        raise RuntimeError("the change failed")
    assert Event.objects.count() == before
    assert EventTopic.objects.get(name=topic).last_seq == last_seq
    # The next event is published, and it is the only one that arrives.
    with transaction.atomic():
        events.on_task(task=task, name=events.STEP, payload={"phase": "y"})
    frame = receive(layer, channel)["frame"]
    assert frame["phase"] == "y" and frame["seq"] == last_seq + 1


@pytest.mark.django_db(transaction=True)
def test_recording_outside_a_transaction_is_refused(world, task):
    with pytest.raises(RuntimeError):
        events.on_task(task=task, name=events.STEP, payload={})


@pytest.mark.parametrize(
    ("name", "kind"),
    [(events.TIMELINE, "answer"), (events.TIMELINE, "cancel"), (events.ACTIVITY, None)],
)
def test_a_statement_writes_only_events_that_call_for_no_webhook(name, kind):
    """The one-statement write of a step (tasks.services.steps_direct) runs no webhook
    hook in its transaction, so it refuses events whose hook could enqueue one (an
    answer, a cancel, a task grid row): they go through ``record``."""
    payload = {"kind": kind} if kind else {"status": "ready"}
    with pytest.raises(ValueError, match="webhook"):
        events.statement_events(
            org_id=1, topic="tasks/t", task_public_id="t", items=[(name, payload)], source="ok"
        )
    step = [(events.STEP, {}), (events.TIMELINE, {"kind": "step"})]
    written = events.statement_events(
        org_id=1, topic="tasks/t", task_public_id="t", items=step, source="ok"
    )
    assert written.ctes.count("UNION ALL") == 1


@pytest.mark.django_db(transaction=True)
def test_channel_layer_failure_is_logged_and_the_request_succeeds(
    world, task, harness, settings, caplog
):
    # A Redis layer pointed at a closed port: the publish really fails.
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": ["redis://127.0.0.1:9/0"]},
        }
    }
    channel_layers.backends.clear()
    try:
        with caplog.at_level(logging.ERROR, logger="tasks.events"):
            response = harness.claim(task.public_id)
        assert response.status_code == 200
        assert any("could not publish" in r.getMessage() for r in caplog.records)
        assert task.events.filter(payload__kind="claim").count() == 1
    finally:
        channel_layers.backends.clear()


@pytest.mark.django_db(transaction=True)
def test_seq_is_gapless_per_topic_across_tasks(world):
    first, second = world.task(), world.task()
    harness = world.harness()
    for task in (first, second, first):
        harness.claim(task.public_id)
    for task in (first, second):
        seqs = list(
            Event.objects.filter(topic=f"tasks/{task.public_id}")
            .order_by("seq")
            .values_list("seq", flat=True)
        )
        assert seqs == list(range(1, len(seqs) + 1))
    activity = list(
        Event.objects.filter(topic="activity/acme").order_by("seq").values_list("seq", flat=True)
    )
    assert activity == list(range(1, len(activity) + 1)) and len(activity) == 4


def test_the_publisher_sends_on_the_memory_layer_only_to_groups_someone_joined():
    """The process's publisher (``Outbox``) skips a group nobody in the process joined
    when the layer is the in-memory one: its ``group_send`` walks every channel before
    looking at the group (issue 18). A watched group still gets its frame."""
    import asyncio

    from channels.layers import InMemoryChannelLayer

    class Counting(InMemoryChannelLayer):
        """The real in-memory layer, noting the groups it was asked to send to."""

        def __init__(self) -> None:
            super().__init__()
            self.sent_to: list[str] = []

        async def group_send(self, group: str, message: dict) -> None:
            self.sent_to.append(group)
            await super().group_send(group, message)

    async def scenario() -> tuple[list[str], list[int]]:
        layer = Counting()
        channel = await layer.new_channel()
        await layer.group_add("ev.watched", channel)
        outbox = events.Outbox(asyncio.get_running_loop())
        items = [
            ("ev.nobody", {"type": "event.frame", "frame": {"seq": 1}}, "nobody 1"),
            ("ev.watched", {"type": "event.frame", "frame": {"seq": 7}}, "watched 7"),
        ]
        channel_layers.backends["default"] = layer
        try:
            outbox._append(items)
            assert outbox.task is not None
            await outbox.task
            got = await asyncio.wait_for(layer.receive(channel), timeout=5)
        finally:
            channel_layers.backends.clear()  # the next use builds the settings' layer
        return layer.sent_to, [got["frame"]["seq"]]

    sent_to, seqs = asyncio.run(scenario())
    assert sent_to == ["ev.watched"]
    assert seqs == [7]
