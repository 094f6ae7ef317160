"""Domain exceptions of the lease protocol and the task lifecycle."""

from __future__ import annotations

from api.errors import DomainError


class LeaseHeld(DomainError):
    code = "lease_held"
    title = "Lease held by another harness"


class LeaseLost(DomainError):
    code = "lease_lost"
    title = "Lease lost"


class TaskPaused(DomainError):
    code = "task_paused"
    title = "Task paused"


class TaskClosed(DomainError):
    code = "task_closed"
    title = "Task closed"


class TaskAssigned(DomainError):
    code = "task_assigned"
    title = "Task assigned to another harness app"


class TaskNotEditable(DomainError):
    code = "task_not_editable"
    title = "Task not editable"


class TaskNotPaused(DomainError):
    code = "task_not_paused"
    title = "Task not paused"


class TaskNotInProgress(DomainError):
    code = "task_not_in_progress"
    title = "Task not in progress"


class InvalidTransition(DomainError):
    code = "invalid_transition"
    title = "Invalid status transition"


class NoLiveRun(DomainError):
    code = "no_live_run"
    title = "No live run"


class RunFinished(DomainError):
    code = "run_finished"
    title = "Run finished"


class OutOfScope(DomainError):
    kind = "unprocessable"
    code = "out_of_scope"
    title = "Artifact out of scope"


class HarnessNameTaken(DomainError):
    code = "name_taken"
    title = "Name taken"


class HarnessInUse(DomainError):
    code = "harness_in_use"
    title = "Harness definition in use"


class AppRevoked(DomainError):
    """The app's key was revoked while its claim was on the way (it authenticated first)."""

    kind = "unauthenticated"
    code = "not_authenticated"
    title = "Not authenticated"
