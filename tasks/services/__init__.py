"""Every write of the tasks app. Views call these; nothing else changes a task.

One module per topic: ``state`` (the task row lock, status changes), ``claims``,
``leases`` (the write guard, heartbeats, release), ``expiry``, ``lifecycle`` (what
people do to tasks), ``reports`` (steps, questions), ``results``, ``tickets``.
"""

from tasks.services.claims import Claim, lease_claim, lease_claim_next
from tasks.services.expiry import lease_settle, leases_sweep
from tasks.services.leases import lease_heartbeat, lease_release
from tasks.services.lifecycle import (
    task_answer,
    task_cancel,
    task_create,
    task_message_send,
    task_reopen,
    task_update,
)
from tasks.services.reports import interrupt_raise, step_record
from tasks.services.results import result_submit
from tasks.services.state import TaskRef
from tasks.services.tickets import ticket_create

__all__ = [
    "Claim",
    "TaskRef",
    "interrupt_raise",
    "lease_claim",
    "lease_claim_next",
    "lease_heartbeat",
    "lease_release",
    "lease_settle",
    "leases_sweep",
    "result_submit",
    "step_record",
    "task_answer",
    "task_cancel",
    "task_create",
    "task_message_send",
    "task_reopen",
    "task_update",
    "ticket_create",
]
