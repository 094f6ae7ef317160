"""The one module that persists and publishes realtime events (docs/contract.md §5).

``record`` must run inside the transaction of the change it reports: the event gets the
next gapless ``seq`` of its topic (one counter row per topic, updated in place, so two
writers on one topic queue on its row lock) and is published to the channel layer only
after that transaction commits. A publish failure is logged and never fails the request:
the event is in the log, and clients catch up from it with ``since``.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.utils import timezone

from accounts.models import Org
from api.cancellation import stopping
from api.rfc3339 import iso
from tasks.models import Event, EventTopic, Task
from tasks.webhooks import outbox

log = logging.getLogger(__name__)

STEP = "os.harness.step"
INTERRUPTED = "task.interrupted"
DELIVERED = "task.delivered"
BLOCKED = "task.blocked"
NO_CHANGES = "task.no_changes"
# The delivery event of each result status (docs/delivery.md).
DELIVERY_EVENTS = {"submitted": DELIVERED, "blocked": BLOCKED, "no_changes": NO_CHANGES}
ACTIVITY = "activity.list_updated"
TIMELINE = "task.timeline"


def task_topic(task: Task) -> str:
    return f"tasks/{task.public_id}"


def activity_topic(org: Org) -> str:
    return f"activity/{org.slug}"


def group_name(topic: str) -> str:
    """Channel-layer group for a topic. Built here, never taken from a client."""
    return "ev." + topic.replace("/", ".")


def ready_group(org: Org) -> str:
    """Channel-layer group of the org's waiting claim-next callers (not a client topic)."""
    return f"ready.{org.slug}"


def frame(event: Event | LaneEvent) -> dict[str, Any]:
    """The wire shape of an event, for WebSocket, SSE and the timeline route alike."""
    body: dict[str, Any] = {
        "event": event.name,
        "type": event.name,
        "topic": event.topic,
        "seq": event.seq,
        "ts": iso(event.created_at),
        "task_id": event.payload.get("task_id"),
    }
    body.update({k: v for k, v in event.payload.items() if k != "task_id"})
    return body


def _next_seqs(topic: str, count: int) -> range:
    """``count`` consecutive seqs of the topic, in one statement once its counter row
    exists (UPDATE … RETURNING, SQLite ≥ 3.35 and Postgres; it was three: get_or_create,
    update, read back). The UPDATE takes the counter row's lock until the transaction
    ends, so writers on one topic still queue there and seqs stay gapless."""
    table = EventTopic._meta.db_table
    for _ in range(2):
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} SET last_seq = last_seq + %s WHERE name = %s RETURNING last_seq",
                [count, topic],
            )
            row = cursor.fetchone()
        if row is not None:
            last = int(row[0])
            return range(last - count + 1, last + 1)
        EventTopic.objects.get_or_create(name=topic)  # the topic's first event
    raise RuntimeError(f"no counter row for topic {topic!r}")


def _next_seqs_of_topics(wanted: list[tuple[str, int]]) -> list[range]:
    """``_next_seqs`` for several topics, in one statement on SQLite.

    SQLite's transaction holds its one write lock, so the order the counter rows are
    updated in does not matter; a batch of steps across 50 tasks paid a statement per
    task here (issue 18). On Postgres each topic is updated on its own, in the order
    given (the batch's task order), so two transactions lock counter rows in one order."""
    once = len({topic for topic, _ in wanted}) == len(wanted)  # a CASE counts a name once
    if len(wanted) == 1 or not once or connection.vendor != "sqlite":
        return [_next_seqs(topic, count) for topic, count in wanted]
    table = EventTopic._meta.db_table
    cases = " ".join(["WHEN %s THEN %s"] * len(wanted))
    names = ", ".join(["%s"] * len(wanted))
    params: list[Any] = [value for pair in wanted for value in pair]
    params += [topic for topic, _ in wanted]
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET last_seq = last_seq + CASE name {cases} END "
            f"WHERE name IN ({names}) RETURNING name, last_seq",
            params,
        )
        last = {str(name): int(seq) for name, seq in cursor.fetchall()}
    return [
        range(last[topic] - count + 1, last[topic] + 1)
        if topic in last
        else _next_seqs(topic, count)  # the topic's first event: its counter row is made
        for topic, count in wanted
    ]


def record(
    *, org: Org, topic: str, name: str, task: Task | None, payload: Mapping[str, Any]
) -> Event:
    (event,) = record_many(org=org, topic=topic, task=task, items=[(name, payload)])
    return event


def record_many(
    *,
    org: Org,
    topic: str,
    task: Task | None,
    items: list[tuple[str, Mapping[str, Any]]],
) -> list[Event]:
    """Events of one change on one topic, in order: one seq allocation and one INSERT for
    all of them (a step and its timeline entry; issue 18)."""
    events = _numbered(org=org, topic=topic, task=task, items=items)
    if len(events) == 1:
        events[0].save(force_insert=True)
    else:
        Event.objects.bulk_create(events)  # primary keys set: RETURNING on both stores
    _announce(events)
    return events


@dataclass(frozen=True, slots=True)
class TaskRef:
    """A task as the lane's events read it: its key and public id, no model instance."""

    pk: int
    public_id: str


@dataclass(frozen=True)
class DirectEvents:
    """The events of one change on one topic, for ``record_direct``."""

    org_id: int
    topic: str
    task: TaskRef
    items: list[tuple[str, Mapping[str, Any]]]


@dataclass(frozen=True, slots=True)
class LaneEvent:
    """An event ``record_direct`` wrote: what publishing (``frame``), webhooks
    (``outbox.on_event``) and the lane read of it, without a model instance. Building two
    ``Event`` models per step was an eighth of the lane's writer thread (issue 18)."""

    org_id: int
    topic: str
    seq: int
    name: str
    task: TaskRef
    payload: dict[str, Any]
    created_at: datetime


def record_direct(changes: list[DirectEvents]) -> list[list[LaneEvent]]:
    """``record_many`` for the step fast lane (tasks.services.steps_direct), for several
    changes at once: the same events, seqs, webhooks and publishing, each topic's seqs
    taken in one statement and every event written with one precompiled ``INSERT``
    instead of the ORM's."""
    db = connections[DEFAULT_DB_ALIAS]  # one lookup, not one per use of the proxy
    if not db.in_atomic_block:
        raise RuntimeError("events.record must run inside the transaction of its change")
    ops = db.ops
    encoder = Event._meta.get_field("payload").encoder
    now = timezone.now()
    created_at = ops.adapt_datetimefield_value(now)
    recorded: list[list[LaneEvent]] = []
    params: list[Any] = []
    seqs = _next_seqs_of_topics([(change.topic, len(change.items)) for change in changes])
    for change, taken in zip(changes, seqs, strict=True):
        task = change.task
        events = []
        for seq, (name, payload) in zip(taken, change.items, strict=True):
            body = _body(payload, task.public_id)
            events.append(LaneEvent(change.org_id, change.topic, seq, name, task, body, now))
            stored = ops.adapt_json_value(body, encoder)  # what JSONField stores
            params += [change.org_id, change.topic, seq, name, task.pk, stored, created_at]
        recorded.append(events)
    rows = ", ".join(["(%s, %s, %s, %s, %s, %s, %s)"] * sum(map(len, recorded)))
    with db.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {Event._meta.db_table} "
            f"(org_id, topic, seq, name, task_id, payload, created_at) VALUES {rows}",
            params,
        )
    _announce([event for events in recorded for event in events])
    return recorded


@dataclass(frozen=True)
class StatementEvents:
    """The events of one change as parts of one Postgres statement: ``ctes`` (``s``, the
    topic's seqs taken, and ``e``, the events inserted) for its ``WITH``, and ``params``
    in their order."""

    ctes: str
    params: list[Any]
    org_id: int
    topic: str
    task_public_id: str
    items: list[tuple[str, Mapping[str, Any]]]

    def lane_events(self, *, last_seq: int, created_at: datetime, task_pk: int) -> list[LaneEvent]:
        """The events the statement wrote, from the ``s.last_seq``, time and task key it
        returned."""
        task = TaskRef(pk=task_pk, public_id=self.task_public_id)
        first = last_seq - len(self.items) + 1
        return [
            LaneEvent(
                self.org_id,
                self.topic,
                first + k,
                name,
                task,
                _body(payload, self.task_public_id),
                created_at,
            )
            for k, (name, payload) in enumerate(self.items)
        ]


def _body(payload: Mapping[str, Any], task_public_id: str) -> dict[str, Any]:
    return {**payload, "task_id": task_public_id}


# The events a statement may write: a step's narration and its timeline entry. They call
# for no webhook (outbox.on_event: only ready, answer and cancel do), so nothing of the
# change is written beside the statement in its transaction.
_STATEMENT_KINDS = {STEP: None, TIMELINE: "step"}


def statement_events(
    *,
    org_id: int,
    topic: str,
    task_public_id: str,
    items: list[tuple[str, Mapping[str, Any]]],
    source: str,
) -> StatementEvents:
    """``record_direct`` for one change as common table expressions of one Postgres
    statement (the step lane's lone step, tasks.services.steps_direct): ``s`` takes the
    topic's next seqs (its counter row locked to the transaction's end, as
    ``_next_seqs``) and ``e`` inserts the events, both only when the CTE named ``source``
    (columns ``task``, the task's key, and ``at``, the events' time) has its one row.
    Without it, or without the topic's counter row, the statement writes nothing. What
    it wrote is published by ``announce_written``."""
    for name, payload in items:
        kind = _STATEMENT_KINDS.get(name, "")
        if kind == "" or (kind is not None and payload.get("kind") != kind):
            raise ValueError(f"{name} {payload.get('kind')!r} may call for a webhook")
    ops, encoder = connection.ops, Event._meta.get_field("payload").encoder
    count = len(items)
    params: list[Any] = [count, topic]
    selects = []
    for k, (name, payload) in enumerate(items):
        selects.append(
            f"SELECT %s, %s, s.last_seq - {count - 1 - k}, %s, {source}.task, %s, {source}.at "
            f"FROM s, {source}"
        )
        stored = ops.adapt_json_value(_body(payload, task_public_id), encoder)
        params += [org_id, topic, name, stored]
    ctes = (
        f"s AS (UPDATE {EventTopic._meta.db_table} SET last_seq = last_seq + %s "
        f"WHERE name = %s AND EXISTS (SELECT 1 FROM {source}) RETURNING last_seq), "
        f"e AS (INSERT INTO {Event._meta.db_table} "
        f"(org_id, topic, seq, name, task_id, payload, created_at) {' UNION ALL '.join(selects)})"
    )
    return StatementEvents(ctes, params, org_id, topic, task_public_id, items)


def announce_written(events: list[LaneEvent]) -> None:
    """Publishes events a statement of ``statement_events`` wrote: once its transaction
    commits, at once when it ran on its own (autocommit)."""
    transaction.on_commit(partial(publish_all, events))


def _numbered(
    *, org: Org, topic: str, task: Task | None, items: list[tuple[str, Mapping[str, Any]]]
) -> list[Event]:
    """The events of one change, with their seqs taken (the topic's counter row is locked
    from here to the end of the transaction)."""
    if not connection.in_atomic_block:
        raise RuntimeError("events.record must run inside the transaction of its change")
    now = timezone.now()
    events = []
    for seq, (name, payload) in zip(_next_seqs(topic, len(items)), items, strict=True):
        body = dict(payload)
        body["task_id"] = task.public_id if task is not None else None
        events.append(
            Event(org=org, topic=topic, seq=seq, name=name, task=task, payload=body, created_at=now)
        )
    return events


def _announce(events: list[Event] | list[LaneEvent]) -> None:
    for event in events:
        # Webhook deliveries the event calls for, in the same transaction (docs/webhooks.md).
        outbox.on_event(event)
    transaction.on_commit(partial(publish_all, events))


def publish_all(events: list[Event] | list[LaneEvent]) -> None:
    """One ``group_send`` per event: one message per server process that has subscribers
    of the topic (tasks/realtime/fanout.py), whatever their number. In a server process
    the events of one change are handed to its event loop together (one wake-up) and the
    request does not wait for them; elsewhere (a management command) each is sent before
    returning."""
    items = [
        (group_name(e.topic), {"type": "event.frame", "frame": frame(e)}, f"{e.topic}#{e.seq}")
        for e in events
    ]
    outbox = _outbox
    try:
        if outbox is not None and outbox.usable():
            outbox.put_many(items)
            return
    except Exception:
        log.exception("could not publish %s", ", ".join(label for _, _, label in items))
        return
    for group, message, label in items:
        try:
            layer = get_channel_layer()
            if layer is not None:
                async_to_sync(layer.group_send)(group, message)
        except Exception:
            # The event is persisted; live subscribers recover it with ``since``.
            log.exception("could not publish %s", label)


SEND_TIMEOUT = 10.0  # seconds for one layer send; a live frame later than that is late anyway


class Outbox:
    """The server process's publisher: requests' threads hand it their committed events
    and return; one task on the event loop sends them, in the order they were handed
    over, so the frames of one process leave in seq order. Consecutive events of one
    topic waiting together (a step's narration and its timeline entry) go as one
    ``event.frames`` message: one layer message, and one write per socket."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.queue: deque[tuple[str, dict[str, Any], str]] = deque()
        self.task: asyncio.Task[None] | None = None

    def usable(self) -> bool:
        if self.loop.is_closed() or not self.loop.is_running():
            return False
        try:
            return asyncio.get_running_loop() is not self.loop
        except RuntimeError:
            return True  # a worker thread: hand it over

    def put_many(self, items: list[tuple[str, dict[str, Any], str]]) -> None:
        self.loop.call_soon_threadsafe(self._append, items)

    def _append(self, items: list[tuple[str, dict[str, Any], str]]) -> None:
        self.queue.extend(items)
        if self.task is None or self.task.done():
            self.task = self.loop.create_task(self._send())

    async def _send(self) -> None:
        await asyncio.sleep(0)  # the thread that handed one event is handing its next
        while self.queue:
            group, message, label = self.queue.popleft()
            frames = [message["frame"]]
            while self.queue and self.queue[0][0] == group:
                frames.append(self.queue.popleft()[1]["frame"])
            if len(frames) > 1:
                message = {"type": "event.frames", "frames": frames}
                label = f"{label}..{frames[-1]['seq']}"
            layer = get_channel_layer()
            if not _listened(layer, group):
                continue
            try:
                # Bounded: a layer send that never returns must not hold the publisher,
                # or the loop's shutdown, forever. (The suite's hang in a loop's shutdown
                # was a cancelled receive, ether_site/channel_layer.py; this bound stays.)
                async with asyncio.timeout(SEND_TIMEOUT):
                    await layer.group_send(group, message)
            except Exception:
                stopping()  # cancelled (the loop is closing): stop, do not send the rest
                log.exception("could not publish %s", label)


def _listened(layer: Any, group: str) -> bool:
    """Whether a frame for ``group`` may reach anyone. False only on the in-memory layer
    (one process: its groups are all there are) when nobody joined the group, as for a
    harness's steps on a task nobody watches. That layer's ``group_send`` walks every
    channel and group for expired entries before it looks at the group: 5% of a process
    serving steps at 2,000/s that nobody watched (issue 18). A layer shared between
    processes (Redis) is always sent to."""
    if not isinstance(layer, InMemoryChannelLayer):
        return True
    return bool(layer.groups.get(group))


_outbox: Outbox | None = None


def publish_from(loop: asyncio.AbstractEventLoop) -> None:
    """Called on the server's event loop: by the realtime hub when it starts, and by
    ``PublisherASGI`` for every HTTP request."""
    global _outbox
    if _outbox is None or _outbox.loop is not loop:
        _outbox = Outbox(loop)


class PublisherASGI:
    """Installs the process's publisher on the server's loop before any request runs.

    Without it, a process with no realtime subscriber yet (a harness-only server, the
    steps benchmark) had no ``Outbox``: each committed event was published from the
    request's thread with ``async_to_sync``, which started a thread and an event loop per
    event (profiled in issue 18: the largest cost of a step after the SQL)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        publish_from(asyncio.get_running_loop())
        await self.app(scope, receive, send)


def task_ready(*, task: Task) -> None:
    """A task of the org became claimable (created, back to ready, reassigned): once the
    change commits, wake the org's claim-next callers, who look again. A ping, not an
    event: it carries nothing and is not persisted, because a waiter that misses it finds
    the task at its next periodic look (``ETHER_CLAIM_NEXT_RECHECK_SECONDS``)."""
    if not connection.in_atomic_block:
        raise RuntimeError("events.task_ready must run inside the transaction of its change")
    transaction.on_commit(partial(ping, ready_group(task.org)))


def ping(group: str) -> None:
    try:
        layer = get_channel_layer()
        if layer is not None:
            async_to_sync(layer.group_send)(group, {"type": "task.ready"})
    except Exception:
        log.exception("could not ping %s", group)


def actor_app(app: Any) -> dict[str, Any]:
    return {"type": "app", "app_id": app.app_id}


def actor_user(user: Any) -> dict[str, Any]:
    return {"type": "user", "username": user.get_username() if user else None}


SYSTEM = {"type": "system"}


def timeline_payload(
    *, kind: str, actor: Mapping[str, Any], summary: str, **details: Any
) -> dict[str, Any]:
    return {"kind": kind, "actor": dict(actor), "summary": summary, **details}


def timeline(
    *, task: Task, kind: str, actor: Mapping[str, Any], summary: str, **details: Any
) -> Event:
    """One entry of the task's timeline: claim, step, interrupt, answer, result, …"""
    payload = timeline_payload(kind=kind, actor=actor, summary=summary, **details)
    return record(org=task.org, topic=task_topic(task), name=TIMELINE, task=task, payload=payload)


def activity(*, task: Task, row: Mapping[str, Any]) -> Event:
    """The task grid row changed: published on ``activity/{org}``."""
    return record(
        org=task.org,
        topic=activity_topic(task.org),
        name=ACTIVITY,
        task=task,
        payload={"status": task.status, "task": dict(row)},
    )


def on_task(*, task: Task, name: str, payload: Mapping[str, Any]) -> Event:
    return record(org=task.org, topic=task_topic(task), name=name, task=task, payload=payload)


def delivered(
    *, task: Task, status: str, run_id: str, version: int, blocks: list[dict[str, Any]]
) -> Event:
    """The run's delivery payload: ``task.delivered``, ``task.blocked`` or ``task.no_changes``."""
    return on_task(
        task=task,
        name=DELIVERY_EVENTS[status],
        payload={"status": status, "run_id": run_id, "version": version, "blocks": blocks},
    )
