"""Reads that shape tasks for the APIs: rows, details, execution bundles, timelines."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet

from accounts.models import Org
from api.errors import NotFound
from api.ids import is_public_id
from corpus.selectors import SLICES, scope_slices
from tasks.context import task_scope
from tasks.events import TIMELINE, iso, task_topic
from tasks.harnesses.selectors import bundle_harness
from tasks.models import (
    Event,
    Harness,
    HarnessApp,
    Interrupt,
    MessageKind,
    Run,
    RunStatus,
    Task,
    TaskMessage,
    TaskStatus,
)


def task_get(*, org: Org, task_id: str) -> Task:
    """The org's task, or NotFound: another org's task and a malformed id look the same."""
    if not is_public_id(task_id, "task"):
        raise NotFound(f"No task {task_id!r}.")
    task = (
        Task.objects.select_related("org", "project", "repo", "owner", "assigned_app")
        .filter(org=org, public_id=task_id)
        .first()
    )
    if task is None:
        raise NotFound(f"No task {task_id!r}.")
    return task


def claimable_tasks(app: HarnessApp) -> QuerySet[Task]:
    """The org's ready tasks ``app`` may claim (unassigned, or assigned to it), oldest
    first (public ids are UUIDv7: their order is the order of creation): what claim-next
    takes and ``GET /api/harness/tasks`` lists."""
    return (
        Task.objects.filter(org_id=app.org_id, status=TaskStatus.READY)
        .filter(Q(assigned_app__isnull=True) | Q(assigned_app_id=app.pk))
        .select_related("assigned_app")
        .order_by("public_id")
    )


def task_questions(task: Task) -> QuerySet[Interrupt]:
    return Interrupt.objects.select_related("run", "answered_by").filter(task=task).order_by("pk")


def tasks_for_org(*, org: Org, status: str | None) -> QuerySet[Task]:
    """The org's tasks with what ``TaskOut`` reads of each fetched in two queries for
    the whole page (a list of 21 tasks took 45 queries before, one pair per task)."""
    queryset = (
        Task.objects.select_related("project", "repo", "owner", "org", "assigned_app")
        .filter(org=org)
        .prefetch_related(
            Prefetch(
                "runs",
                queryset=Run.objects.live().select_related("app").order_by("pk"),
                to_attr="prefetched_live_runs",
            ),
            Prefetch(
                "interrupts",
                queryset=Interrupt.objects.open()
                .select_related("run", "answered_by")
                .order_by("pk"),
                to_attr="prefetched_open_questions",
            ),
        )
    )
    if status:
        queryset = queryset.filter(status=status)
    return queryset


def last_checkpoint(task: Task) -> dict[str, Any] | None:
    run = (
        Run.objects.filter(task=task, checkpoint__isnull=False)
        .order_by("-checkpoint_at", "-pk")
        .first()
    )
    if run is None:
        return None
    return {**run.checkpoint, "run_id": run.public_id, "at": iso(run.checkpoint_at)}


def context_refs(task: Task) -> dict[str, Any]:
    """The document ids of the task's scope, as the context route would list them."""
    slices = scope_slices(task_scope(task), list(SLICES))
    return {
        "doc_ids": [doc.public_id for item in slices for doc in item.docs],
        "slices": list(SLICES),
    }


@dataclass(frozen=True)
class ExecutionBundle:
    """What ``BundleOut`` renders: everything a harness needs for one attempt
    (docs/contract.md §3). The serializer builds the absolute callback URLs."""

    task: Task
    context: dict[str, Any]
    questions: list[Interrupt]
    feedback: list[TaskMessage]
    checkpoint: dict[str, Any] | None
    harness: Harness | None


def bundle_flags() -> dict[str, Exists]:
    """Annotations a claim asks in its task lock's statement: a first claim has no
    questions, feedback or checkpoint, and its bundle then reads none (issue 18)."""
    return {
        "has_questions": Exists(Interrupt.objects.filter(task=OuterRef("pk"))),
        "has_feedback": Exists(
            TaskMessage.objects.filter(task=OuterRef("pk"), kind=MessageKind.FEEDBACK)
        ),
        "has_checkpoint": Exists(Run.objects.filter(task=OuterRef("pk"), checkpoint__isnull=False)),
    }


def execution_bundle(*, task: Task, app: HarnessApp) -> ExecutionBundle:
    def known(flag: str) -> bool:  # absent (not annotated): read to find out
        return getattr(task, flag, True)

    return ExecutionBundle(
        task=task,
        context=context_refs(task),
        questions=list(task_questions(task)) if known("has_questions") else [],
        feedback=list(task_feedback(task)) if known("has_feedback") else [],
        checkpoint=last_checkpoint(task) if known("has_checkpoint") else None,
        harness=bundle_harness(app),
    )


def previous_run_started_at(task: Task) -> datetime | None:
    """When the run before the current one began: the moment it read its context.

    With a live run, that is the run before it; without one (a preview before a claim),
    the task's latest run. None when there was no such run."""
    runs = Run.objects.filter(task=task).order_by("-started_at", "-pk")
    started = list(runs.values_list("status", "started_at")[:2])
    if started and started[0][0] == RunStatus.LIVE:
        started = started[1:]
    return started[0][1] if started else None


def task_feedback(task: Task) -> QuerySet[TaskMessage]:
    """Every feedback given on the task's reopens, oldest first (the bundle's ``feedback``)."""
    return (
        TaskMessage.objects.select_related("author")
        .filter(task=task, kind=MessageKind.FEEDBACK)
        .order_by("pk")
    )


def task_answers(task: Task) -> QuerySet[Interrupt]:
    return (
        Interrupt.objects.select_related("run", "answered_by")
        .filter(task=task, answered_at__isnull=False)
        .order_by("pk")
    )


def timeline_events(task: Task) -> Any:
    return Event.objects.filter(task=task, topic=task_topic(task), name=TIMELINE)
