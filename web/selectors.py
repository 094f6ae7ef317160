"""Reads for the server-rendered pages: the task grid, a task, its replay and its
compaction history.

Every page that goes live over the realtime hub follows one rule: **read the topic
position first, then the state**. The position is embedded in the page and the browser
subscribes with ``since`` = that position. An event committed between the two reads is
then both in the state and replayed to the browser, which de-duplicates (by seq, by task
id, by interrupt id); nothing committed after the position read can be missed. Reading
the state first would leave a window whose events are in neither.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from accounts.models import Org
from corpus.models import Compaction, Document, DocumentKind, DocumentVersion
from delivery.models import Delivery
from tasks.events import TIMELINE, activity_topic, frame, task_topic
from tasks.models import Event, Run, Step, Task
from tasks.realtime import hub
from tasks.selectors import tasks_for_org
from tasks.serializers.outputs import TaskOut, TaskRowOut
from web.serializers import (
    DeliveryCardOut,
    FoldOut,
    MemoryOut,
    RunLineOut,
    StepLineOut,
    WorkingNoteOut,
)

GRID_LIMIT = 200
NARRATION_LIMIT = 200
REPLAY_EVENT_LIMIT = 5000


# --- Grid ----------------------------------------------------------------------------


@dataclass(frozen=True)
class GridPage:
    org: Org
    topic: str
    position: int
    rows: list[dict[str, Any]]


def grid_page(*, org: Org) -> GridPage:
    topic = activity_topic(org)
    position = hub.last_seq(topic)  # before the rows: see the module docstring
    tasks = tasks_for_org(org=org, status=None).order_by("-updated_at", "-pk")[:GRID_LIMIT]
    return GridPage(org=org, topic=topic, position=position, rows=TaskRowOut(tasks, many=True).data)


# --- Task ----------------------------------------------------------------------------


def deliveries_of(task: Task) -> list[dict[str, Any]]:
    """Every delivery of the task, oldest version first."""
    rows = Delivery.objects.select_related("run").filter(task=task).order_by("version")
    return DeliveryCardOut(rows, many=True).data


def latest_delivery(task: Task) -> dict[str, Any] | None:
    row = Delivery.objects.select_related("run").filter(task=task).order_by("-version").first()
    return DeliveryCardOut(row).data if row is not None else None


@dataclass(frozen=True)
class TaskPage:
    task: Task
    detail: dict[str, Any]
    positions: dict[str, int]
    steps: list[dict[str, Any]]
    steps_total: int
    delivery: dict[str, Any] | None
    # True when the latest delivery belongs to the latest run: the page opens on the card.
    delivered: bool


def task_page(*, org: Org, task: Task) -> TaskPage:
    """The task page's state, read after the positions of both topics it subscribes to.
    ``task`` comes from ``tasks.selectors.task_get`` (the org check); it is read again
    here, after the positions."""
    positions = {
        task_topic(task): hub.last_seq(task_topic(task)),
        activity_topic(org): hub.last_seq(activity_topic(org)),
    }
    task.refresh_from_db()
    steps_qs = Step.objects.select_related("run").filter(task=task)
    steps_total = steps_qs.count()
    # The newest steps, shown oldest first; the replay page has all of them.
    steps = StepLineOut(reversed(steps_qs.order_by("-seq")[:NARRATION_LIMIT]), many=True).data
    delivery = latest_delivery(task)
    latest_run = Run.objects.filter(task=task).order_by("-started_at", "-pk").first()
    delivered = bool(delivery and latest_run and delivery["run_id"] == latest_run.public_id)
    return TaskPage(
        task=task,
        detail=TaskOut(task).data,
        positions=positions,
        steps=steps,
        steps_total=steps_total,
        delivery=delivery,
        delivered=delivered,
    )


# --- Replay --------------------------------------------------------------------------


@dataclass(frozen=True)
class ReplayPage:
    task: Task
    events: list[dict[str, Any]]
    truncated: bool
    deliveries: list[dict[str, Any]]
    runs: list[dict[str, Any]]


def replay_page(*, org: Org, task: Task) -> ReplayPage:
    """The task topic's persisted events, in seq order, for playback in the browser.

    Timeline entries of kind ``step`` repeat the ``os.harness.step`` event beside them,
    so they are left out; every other event is played.
    """
    rows = (
        Event.objects.filter(topic=task_topic(task))
        .exclude(name=TIMELINE, payload__kind="step")
        .order_by("seq")
    )
    events = [frame(e) for e in rows[: REPLAY_EVENT_LIMIT + 1]]
    truncated = len(events) > REPLAY_EVENT_LIMIT
    runs = Run.objects.select_related("app").filter(task=task).order_by("started_at", "pk")
    return ReplayPage(
        task=task,
        events=events[:REPLAY_EVENT_LIMIT],
        truncated=truncated,
        deliveries=deliveries_of(task),
        runs=RunLineOut(runs, many=True).data,
    )


# --- Compaction ----------------------------------------------------------------------


@dataclass(frozen=True)
class CompactionPage:
    task: Task
    working: list[dict[str, Any]]
    memory: dict[str, Any] | None
    compactions: list[dict[str, Any]]
    raw_bytes: int


def compaction_page(*, org: Org, task: Task) -> CompactionPage:
    """The working documents of the task's runs, its compacted memory and each fold."""
    run_apps = dict(
        Run.objects.filter(task=task).values_list("public_id", "app__app_id"),
    )
    docs = list(
        Document.objects.filter(
            org=org, task_ref=task.public_id, kind__in=[DocumentKind.WORKING, DocumentKind.MEMORY]
        ).order_by("created_at", "pk")
    )
    compactions = list(
        Compaction.objects.filter(org=org, task_ref=task.public_id).order_by("created_at", "pk")
    )
    latest_inputs = {row["doc_id"] for row in compactions[-1].inputs} if compactions else set()
    working = WorkingNoteOut(
        [d for d in docs if d.kind == DocumentKind.WORKING],
        many=True,
        context={"run_apps": run_apps, "folded": latest_inputs},
    ).data
    memory_doc = next((d for d in docs if d.kind == DocumentKind.MEMORY), None)
    bodies = {
        (v.document_id, v.version): v.body
        for v in DocumentVersion.objects.filter(document__in=[c.memory_id for c in compactions])
    }
    folds = FoldOut(reversed(compactions), many=True, context={"bodies": bodies}).data
    return CompactionPage(
        task=task,
        working=working,
        memory=MemoryOut(memory_doc).data if memory_doc is not None else None,
        compactions=folds,  # newest first
        raw_bytes=sum(w["bytes"] for w in working),
    )
