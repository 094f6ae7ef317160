"""Delivery writes. A submitted result is judged here before ``tasks`` stores it."""

from __future__ import annotations

from typing import Any

from delivery.judge import check_artifact
from tasks.models import HarnessApp, Task
from tasks.services import result_submit
from tasks.services.results import Submitted


def delivery_result_submit(*, app: HarnessApp, task: Task, **fields: Any) -> Submitted:
    """Ends the run with its result; a submitted PR must be in the task's scope."""
    return result_submit(app=app, task=task, check_artifact=check_artifact, **fields)
