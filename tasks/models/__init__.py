"""The tasks app's models, by topic: ``harnesses`` (definitions, registered apps),
``tasks`` (tasks and the runs that lease them), ``reports`` (steps, interrupts, messages,
results), ``events`` (events, topics, realtime tickets) and, from ``tasks.webhooks``, the
webhook endpoints and their outbox. Imported here so Django registers them all under the
``tasks`` app (the tables keep their ``tasks_*`` names)."""

from tasks.models.events import Event, EventTopic, RealtimeTicket
from tasks.models.harnesses import Harness, HarnessApp, HarnessStatus
from tasks.models.reports import (
    Interrupt,
    InterruptQuerySet,
    MessageKind,
    Result,
    ResultStatus,
    Step,
    TaskMessage,
)
from tasks.models.tasks import (
    CLAIMABLE_STATUSES,
    CLOSED_STATUSES,
    Run,
    RunQuerySet,
    RunStatus,
    Task,
    TaskStatus,
)
from tasks.webhooks.models import (
    DeliveryStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)

__all__ = [
    "CLAIMABLE_STATUSES",
    "CLOSED_STATUSES",
    "DeliveryStatus",
    "Event",
    "EventTopic",
    "Harness",
    "HarnessApp",
    "HarnessStatus",
    "Interrupt",
    "InterruptQuerySet",
    "MessageKind",
    "RealtimeTicket",
    "Result",
    "ResultStatus",
    "Run",
    "RunQuerySet",
    "RunStatus",
    "Step",
    "Task",
    "TaskMessage",
    "TaskStatus",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
]
