"""What a live run reports while it works: narration steps and questions to the user."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction

from api import metrics
from api.ids import new_step_id
from tasks import events
from tasks.context import task_document_sync
from tasks.errors import TaskPaused
from tasks.models import HarnessApp, Interrupt, Run, Step, Task, TaskStatus
from tasks.services.expiry import lease_settle, settled_on_refusal
from tasks.services.leases import guard_write
from tasks.services.state import TaskRef, set_task_status


@dataclass(frozen=True)
class Recorded:
    step: Step
    replayed: bool


def step_record(
    *,
    app: HarnessApp,
    task: Task | TaskRef,
    run_id: str,
    lease_epoch: int | None,
    phase: str,
    user_message: str,
    internal_label: str = "",
    client_step_id: str | None = None,
) -> Recorded:
    """Stores a step and emits ``os.harness.step``; a repeated ``client_step_id`` is a replay.

    Six statements on SQLite (BEGIN, the task lock, the run, both events' seqs, both
    events, the step), five on Postgres: tests/tasks/test_query_counts.py holds it there."""
    with settled_on_refusal(task), transaction.atomic():
        g = guard_write(
            app=app, task=task, run_id=run_id, lease_epoch=lease_epoch, related=("org",)
        )
        if client_step_id is not None:
            first = Step.objects.filter(run=g.run, client_step_id=client_step_id).first()
            if first is not None:
                return Recorded(step=first, replayed=True)
        step_id = new_step_id()
        event, _entry = events.record_many(
            org=g.task.org,
            topic=events.task_topic(g.task),
            task=g.task,
            items=[
                (
                    events.STEP,
                    {
                        "phase": phase,
                        "user_message": user_message,
                        "internal_label": internal_label,
                        "run_id": g.run.public_id,
                        "step_id": step_id,
                    },
                ),
                (
                    events.TIMELINE,
                    events.timeline_payload(
                        kind="step",
                        actor=events.actor_app(app),
                        summary=user_message,
                        run_id=g.run.public_id,
                        step_id=step_id,
                        phase=phase,
                    ),
                ),
            ],
        )
        step = Step.objects.create(
            public_id=step_id,
            task=g.task,
            run=g.run,
            seq=event.seq,
            phase=phase,
            user_message=user_message,
            internal_label=internal_label,
            client_step_id=client_step_id,
            created_at=g.now,
        )
        metrics.count_on_commit(metrics.STEPS.inc)
        return Recorded(step=step, replayed=False)


def ask_user(
    *,
    task: Task,
    run: Run,
    question: str,
    choices: list[str],
    source: str,
    allow_free_text: bool = False,
) -> Interrupt:
    """Pauses the task on a question (from ``interrupt`` or a ``blocked`` result)."""
    interrupt = Interrupt.objects.create(
        task=task,
        run=run,
        question=question,
        choices=choices,
        allow_free_text=allow_free_text,
        source=source,
    )
    events.on_task(
        task=task,
        name=events.INTERRUPTED,
        payload={
            "question": question,
            "choices": choices,
            "allow_free_text": allow_free_text,
            "run_id": run.public_id,
            "interrupt_id": interrupt.public_id,
        },
    )
    events.timeline(
        task=task,
        kind="interrupt",
        actor=events.actor_app(run.app),
        summary=question,
        run_id=run.public_id,
        interrupt_id=interrupt.public_id,
        source=source,
    )
    set_task_status(task, TaskStatus.PAUSED, interrupt.created_at)
    task_document_sync(task)
    return interrupt


def interrupt_raise(
    *,
    app: HarnessApp,
    task: Task,
    run_id: str,
    lease_epoch: int | None,
    question: str,
    choices: list[str],
    allow_free_text: bool = False,
) -> Interrupt:
    """Pauses the task on a question; the lease is kept and heartbeats still extend it."""
    lease_settle(task_pk=task.pk)
    with transaction.atomic():
        g = guard_write(app=app, task=task, run_id=run_id, lease_epoch=lease_epoch)
        if g.task.status == TaskStatus.PAUSED:
            raise TaskPaused("The task already waits on a question; wait for its answer.")
        return ask_user(
            task=g.task,
            run=g.run,
            question=question,
            choices=choices,
            allow_free_text=allow_free_text,
            source="interrupt",
        )
