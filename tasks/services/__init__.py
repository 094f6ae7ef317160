"""Every write of the tasks app. Views call these; nothing else changes a task."""

from tasks.services.leases import (
    lease_claim,
    lease_heartbeat,
    lease_release,
    lease_settle,
    leases_sweep,
)
from tasks.services.lifecycle import (
    task_answer,
    task_cancel,
    task_create,
    task_message_send,
    task_reopen,
)
from tasks.services.reports import interrupt_raise, step_record
from tasks.services.results import result_submit
from tasks.services.tickets import ticket_create

__all__ = [
    "interrupt_raise",
    "lease_claim",
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
    "ticket_create",
]
