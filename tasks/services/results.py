"""The end of a run: its result, which also ends the lease."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from api import metrics
from api.errors import Forbidden
from tasks import events
from tasks.context import working_document_write
from tasks.errors import LeaseLost, RunFinished
from tasks.models import HarnessApp, Result, ResultStatus, Run, RunStatus, Task, TaskStatus
from tasks.services.expiry import lease_settle
from tasks.services.leases import guard_write
from tasks.services.reports import ask_user
from tasks.services.state import locked_task, set_task_status, withdraw_questions

TASK_STATUS_AFTER = {
    ResultStatus.SUBMITTED: TaskStatus.COMPLETED,
    ResultStatus.BLOCKED: TaskStatus.PAUSED,
    ResultStatus.NO_CHANGES: TaskStatus.NO_CHANGES,
}

# Runs inside the result's transaction, before anything is stored; raises to refuse, and
# returns the artifact to store (delivery stores the PR's URL as a browser reads it).
ArtifactCheck = Callable[[Task, dict[str, Any] | None], dict[str, Any] | None]
# Runs inside the result's transaction once the result is stored (never for a replay);
# delivery composes and persists its payload here, so both commit or neither does.
ResultHook = Callable[[Result], None]


@dataclass(frozen=True)
class Submitted:
    result: Result
    task: Task
    replayed: bool


def result_fingerprint(payload: dict[str, Any]) -> str:
    material = {k: v for k, v in payload.items() if k != "lease_epoch"}
    canonical = json.dumps(material, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def result_submit(
    *,
    app: HarnessApp,
    task: Task,
    run_id: str,
    lease_epoch: int | None,
    status: str,
    agent_status: str,
    artifact: dict[str, Any] | None = None,
    working_summary: str = "",
    no_changes_reason: str = "",
    question: str = "",
    check_artifact: ArtifactCheck | None = None,
    on_stored: ResultHook | None = None,
) -> Submitted:
    """Stores the run's result, ends the run and moves the task on.

    The same result sent again for the same run answers as the first time and stores
    nothing; any other result for a finished run is ``run_finished``.
    """
    payload = {
        "run_id": run_id,
        "status": status,
        "agent_status": agent_status,
        "artifact": artifact,
        "working_summary": working_summary,
        "no_changes_reason": no_changes_reason,
        "question": question,
    }
    fingerprint = result_fingerprint(payload)
    lease_settle(task_pk=task.pk)
    with transaction.atomic():
        locked = locked_task(task)
        run = Run.objects.select_related("app").filter(task=locked, public_id=run_id).first()
        if run is None:
            raise LeaseLost(f"{run_id} is not a run of this task.")
        if run.app_id != app.pk:
            raise Forbidden(f"{run_id} belongs to another harness app.")
        previous = Result.objects.select_related("run", "task").filter(run=run).first()
        if previous is not None:
            if previous.fingerprint == fingerprint:
                return Submitted(result=previous, task=locked, replayed=True)
            raise RunFinished(
                f"{run_id} already finished with a {previous.status!r} result; "
                "claim the task again to send another."
            )
        g = guard_write(app=app, task=locked, run_id=run_id, lease_epoch=lease_epoch)
        task, run = g.task, g.run
        if check_artifact is not None and status == ResultStatus.SUBMITTED:
            artifact = check_artifact(task, artifact)
        Run.objects.filter(pk=run.pk).update(
            status=RunStatus.FINISHED, ended_at=g.now, end_reason="result"
        )
        run.status = RunStatus.FINISHED
        result = Result(
            run=run,
            task=task,
            status=status,
            agent_status=agent_status,
            artifact=artifact,
            working_summary=working_summary,
            no_changes_reason=no_changes_reason,
            question=question,
            fingerprint=fingerprint,
            response={},
            created_at=g.now,
        )
        interrupt_id = None
        # The run that asked is over: its question can no longer be answered to it.
        withdraw_questions(task=task, now=g.now)
        events.timeline(
            task=task,
            kind="result",
            actor=events.actor_app(app),
            summary=agent_status or status,
            run_id=run.public_id,
            status=status,
            artifact=artifact,
        )
        if status == ResultStatus.BLOCKED:
            interrupt = ask_user(task=task, run=run, question=question, choices=[], source="result")
            interrupt_id = interrupt.public_id
        else:
            set_task_status(task, TASK_STATUS_AFTER[ResultStatus(status)], g.now)
        # What the answer said then, for its replays (tasks.serializers.harness.ResultOut).
        result.response = {"task_status": task.status, "interrupt_id": interrupt_id}
        result.save()
        if working_summary.strip():
            working_document_write(task=task, run=run, summary=working_summary)
        if on_stored is not None:
            on_stored(result)
        metrics.count_on_commit(metrics.RESULTS.labels(status).inc)
        return Submitted(result=result, task=task, replayed=False)
