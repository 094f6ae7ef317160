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

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.db.models import Q

from accounts.models import Org, Project, Repository
from corpus.models import Compaction, Document, DocumentKind, DocumentVersion
from corpus.selectors import working_selection
from delivery.models import Delivery
from tasks.events import TIMELINE, activity_topic, frame, task_topic
from tasks.models import Event, HarnessApp, Run, Step, Task, TaskStatus
from tasks.realtime import hub
from tasks.selectors import tasks_for_org
from tasks.serializers.outputs import TaskOut, TaskRowOut
from web.serializers import (
    ActiveRunOut,
    DeliveryCardOut,
    FoldOut,
    MemoryOut,
    RunLineOut,
    StepLineOut,
    WorkingNoteOut,
)

NARRATION_LIMIT = 200
REPLAY_EVENT_LIMIT = 5000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# --- Grid ----------------------------------------------------------------------------

GRID_PAGE_SIZE = 50
# A page position: the last (or first) row's update time in microseconds and its id.
# Keyset paging on (updated_at, public_id): a task updated while someone pages moves to
# the first page instead of shifting every later page by one.
CURSOR = re.compile(r"(?P<micros>[0-9]{1,20})\.(?P<task_id>task_[0-9a-f]{32})")
SEARCH_MAX_CHARS = 200


@dataclass(frozen=True)
class GridQuery:
    """What the grid is asked for (``?status=&q=&after=|before=``), already checked:
    an unknown status or a cursor this server did not issue reads as absent."""

    status: str = ""
    q: str = ""
    after: tuple[datetime, str] | None = None  # older than this row
    before: tuple[datetime, str] | None = None  # newer than this row

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> GridQuery:
        status = params.get("status", "")
        return cls(
            status=status if status in TaskStatus.values else "",
            q=" ".join(params.get("q", "").split())[:SEARCH_MAX_CHARS],
            after=_cursor(params.get("after", "")),
            before=_cursor(params.get("before", "")),
        )

    def link(self, **changes: str) -> str:
        """The query string of this grid with ``changes`` (empty values left out)."""
        values = {"status": self.status, "q": self.q, **changes}
        kept = {name: value for name, value in values.items() if value}
        return "?" + urlencode(kept)


def _cursor(raw: str) -> tuple[datetime, str] | None:
    match = CURSOR.fullmatch(raw)
    if match is None:
        return None
    try:
        stamp = EPOCH + timedelta(microseconds=int(match["micros"]))
    except OverflowError:
        return None
    return stamp, match["task_id"]


def cursor_of(row: Task) -> str:
    delta = row.updated_at - EPOCH
    micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    return f"{micros}.{row.public_id}"


@dataclass(frozen=True)
class GridPage:
    org: Org
    topic: str
    position: int
    rows: list[dict[str, Any]]
    query: GridQuery
    matching: int  # tasks that match the filter, on every page
    older: str | None  # the query string of the next (older) page, or None
    newer: str | None  # the query string of the previous (newer) page, or None
    waiting: list[str]  # ids of the org's tasks that need an answer (paused)


def grid_page(*, org: Org, query: GridQuery | None = None) -> GridPage:
    """One page of the org's tasks, newest update first, filtered by status and title.

    "Needs your answer" is the paused status: a task is paused exactly while its question
    is open (an interrupt or a blocked result pauses it; an answer, a withdrawal or a
    cancel moves it on), so the count is kept live from the grid's own frames."""
    query = query or GridQuery()
    topic = activity_topic(org)
    position = hub.last_seq(topic)  # before the rows: see the module docstring
    tasks = tasks_for_org(org=org, status=query.status or None)
    if query.q:
        tasks = tasks.filter(title__icontains=query.q)
    matching = tasks.count()
    if query.before is not None:
        stamp, task_id = query.before
        newer = Q(updated_at__gt=stamp) | Q(updated_at=stamp, public_id__gt=task_id)
        rows = list(tasks.filter(newer).order_by("updated_at", "public_id")[: GRID_PAGE_SIZE + 1])
        has_newer = len(rows) > GRID_PAGE_SIZE
        rows = rows[:GRID_PAGE_SIZE][::-1]
        has_older = True
    else:
        if query.after is not None:
            stamp, task_id = query.after
            older = Q(updated_at__lt=stamp) | Q(updated_at=stamp, public_id__lt=task_id)
            tasks = tasks.filter(older)
        rows = list(tasks.order_by("-updated_at", "-public_id")[: GRID_PAGE_SIZE + 1])
        has_older = len(rows) > GRID_PAGE_SIZE
        rows = rows[:GRID_PAGE_SIZE]
        has_newer = query.after is not None
    if not rows:
        has_older = has_older and query.before is not None
    waiting = list(
        Task.objects.filter(org=org, status=TaskStatus.PAUSED).values_list("public_id", flat=True)
    )
    return GridPage(
        org=org,
        topic=topic,
        position=position,
        rows=TaskRowOut(rows, many=True).data,
        query=query,
        matching=matching,
        older=query.link(after=cursor_of(rows[-1])) if has_older and rows else None,
        newer=query.link(before=cursor_of(rows[0])) if has_newer and rows else None,
        waiting=waiting,
    )


def create_choices(*, org: Org) -> dict[str, list[dict[str, str]]]:
    """What the grid's "New task" form offers: the org's projects, repositories (with
    their project) and harness apps that are not revoked."""
    projects = Project.objects.filter(org=org).order_by("slug")
    repos = Repository.objects.filter(org=org).select_related("project").order_by("full_name")
    apps = HarnessApp.objects.filter(org=org, revoked_at__isnull=True).order_by("app_id")
    return {
        "projects": [{"slug": p.slug, "name": p.name or p.slug} for p in projects],
        "repos": [{"full_name": r.full_name, "project": r.project.slug} for r in repos],
        "apps": [{"app_id": a.app_id, "name": a.name or a.app_id} for a in apps],
    }


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
    # The newest run (None before the first claim): the page's "what is going on" strip.
    run: dict[str, Any] | None
    # The viewer's own rating of the latest delivery ("up", "down" or None).
    rating: str | None


def rating_of(*, task: Task, version: int, username: str) -> str | None:
    """The newest rating ``username`` gave delivery ``version``. Ratings are ``feedback``
    entries of the task's timeline (delivery.services.delivery_feedback): the event log
    is their record, so the page reads them back from it."""
    entry = (
        Event.objects.filter(
            topic=task_topic(task),
            name=TIMELINE,
            payload__kind="feedback",
            payload__version=version,
            payload__actor__username=username,
        )
        .order_by("-seq")
        .values_list("payload", flat=True)
        .first()
    )
    return entry.get("rating") if entry else None


def task_page(*, org: Org, task: Task, username: str = "") -> TaskPage:
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
    latest_run = (
        Run.objects.select_related("app").filter(task=task).order_by("-started_at", "-pk").first()
    )
    delivered = bool(delivery and latest_run and delivery["run_id"] == latest_run.public_id)
    rating = (
        rating_of(task=task, version=delivery["version"], username=username)
        if delivery and username
        else None
    )
    return TaskPage(
        task=task,
        detail=TaskOut(task).data,
        positions=positions,
        steps=steps,
        steps_total=steps_total,
        delivery=delivery,
        delivered=delivered,
        run=ActiveRunOut(latest_run).data if latest_run is not None else None,
        rating=rating,
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

    Timeline entries of kind ``step`` and ``interrupt`` repeat the ``os.harness.step``
    and ``task.interrupted`` events beside them (a question would read twice), so they
    are left out; every other event is played.
    """
    rows = (
        Event.objects.filter(topic=task_topic(task))
        .exclude(name=TIMELINE, payload__kind__in=["step", "interrupt"])
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
    budget_bytes: int  # ETHER_WORKING_BUDGET_BYTES: what the `working` slice may hold
    slice_bytes: int  # what the next claim's `working` slice holds now
    slice_docs: list[str]  # the paths in that slice, memory first


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
    # The slice exactly as a harness will read it (corpus.selectors.working_selection).
    in_slice = working_selection(docs, folded=latest_inputs)
    return CompactionPage(
        task=task,
        working=working,
        memory=MemoryOut(memory_doc).data if memory_doc is not None else None,
        compactions=folds,  # newest first
        raw_bytes=sum(w["bytes"] for w in working),
        budget_bytes=settings.ETHER_WORKING_BUDGET_BYTES,
        slice_bytes=sum(d.size for d in in_slice),
        slice_docs=[d.path for d in in_slice],
    )
