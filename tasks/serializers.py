"""Input serializers (strict) and the output serializers that render the task APIs' answers
(and so are their OpenAPI schema)."""

from __future__ import annotations

import re
from typing import Any

from django.core.validators import RegexValidator
from django.urls import reverse
from rest_framework import serializers

from api.fields import (
    StrictBooleanField,
    StrictCharField,
    StrictChoiceField,
    StrictIntegerField,
    StrictSerializer,
    TimestampField,
    UsernameField,
)
from api.public_url import absolute_url, public_origin
from api.query import QueryCharField, QueryChoiceField, QueryIntegerField, QuerySerializer
from corpus.selectors import SLICES
from tasks.events import task_topic
from tasks.harnesses.selectors import harness_body
from tasks.models import ResultStatus, Task, TaskStatus

RUN_ID = re.compile(r"^run_[0-9a-f]{32}$")


class RunIdField(StrictCharField):
    default_error_messages = {"bad_run_id": "Must be a run id (run_ and 32 lowercase hex)."}

    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data)
        if not RUN_ID.match(value):
            self.fail("bad_run_id")
        return value


class RunWriteIn(StrictSerializer):
    run_id = RunIdField()
    lease_epoch = StrictIntegerField(required=False, min_value=1)


# --- Harness inputs -------------------------------------------------------------------


class ClaimIn(StrictSerializer):
    app_id = StrictCharField(max_length=64)


class CheckpointIn(StrictSerializer):
    branch = StrictCharField(required=False, max_length=200, allow_blank=True)
    head_sha = StrictCharField(required=False, max_length=64, allow_blank=True)
    note = StrictCharField(required=False, max_length=2000, allow_blank=True)


class HeartbeatIn(RunWriteIn):
    checkpoint = CheckpointIn(required=False)


class StepIn(RunWriteIn):
    phase = StrictCharField(max_length=64)
    user_message = StrictCharField(max_length=4000)
    internal_label = StrictCharField(required=False, max_length=200, allow_blank=True)
    client_step_id = StrictCharField(required=False, max_length=200)


class InterruptIn(RunWriteIn):
    question = StrictCharField(max_length=4000)
    choices = serializers.ListField(
        child=StrictCharField(max_length=200), required=False, max_length=20
    )
    # Without it, an answer must be one of ``choices`` (400 naming them otherwise).
    allow_free_text = StrictBooleanField(required=False, default=False)

    def validate_choices(self, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise serializers.ValidationError("Choices must differ from each other.")
        return value


class PullRequestIn(StrictSerializer):
    number = StrictIntegerField(min_value=1)
    branch = StrictCharField(max_length=200)
    # Not trimmed: the judge sees the URL as sent and refuses surrounding whitespace.
    url = StrictCharField(max_length=500, trim_whitespace=False)
    # Shown on the delivery's hero block; optional.
    title = StrictCharField(required=False, max_length=300, allow_blank=True)
    # The commit the harness pushed; with ETHER_GITHUB_TOKEN it is compared with the PR's
    # head on GitHub (docs/delivery.md). Optional: without it the head is only reported.
    head_sha = StrictCharField(
        required=False,
        min_length=7,
        max_length=64,
        validators=[RegexValidator(r"^[0-9a-f]+$", "A lower-case hex commit sha.")],
    )


class ArtifactIn(serializers.Serializer):
    """``pr`` is checked; other keys (``agent_status``, links, …) are kept as sent."""

    pr = PullRequestIn(required=False)

    def to_internal_value(self, data: Any) -> Any:
        clean = super().to_internal_value(data)
        extra = {k: v for k, v in data.items() if k not in self.fields}
        return {**extra, **clean}


class ResultIn(RunWriteIn):
    status = StrictChoiceField(choices=ResultStatus.choices)
    agent_status = StrictCharField(max_length=2000, allow_blank=True)
    artifact = ArtifactIn(required=False)
    working_summary = StrictCharField(
        required=False, allow_blank=True, max_length=262144, trim_whitespace=False
    )
    no_changes_reason = StrictCharField(required=False, allow_blank=True, max_length=4000)
    question = StrictCharField(required=False, allow_blank=True, max_length=4000)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        status = attrs["status"]
        if status == ResultStatus.NO_CHANGES and not attrs.get("no_changes_reason", "").strip():
            raise serializers.ValidationError(
                {"no_changes_reason": ["Required when status is no_changes."]}
            )
        if status == ResultStatus.BLOCKED and not attrs.get("question", "").strip():
            raise serializers.ValidationError({"question": ["Required when status is blocked."]})
        return attrs


# --- Product inputs -------------------------------------------------------------------


def _branch_glob(value: str) -> str:
    if not value.strip() or any(c.isspace() for c in value):
        raise serializers.ValidationError("Must be a branch glob without spaces, like ether/*.")
    return value


class TaskCreateIn(StrictSerializer):
    title = StrictCharField(max_length=300)
    prompt = StrictCharField(max_length=100_000)
    definition_of_done = serializers.ListField(
        child=StrictCharField(max_length=1000), max_length=100
    )
    project = StrictCharField(max_length=64)
    repo = StrictCharField(max_length=200)
    branch_scope = StrictCharField(required=False, max_length=200)
    assigned_app_id = StrictCharField(
        required=False,
        allow_null=True,
        max_length=64,
        help_text="Only this harness app of the org may claim the task; null: any app.",
    )

    def validate_branch_scope(self, value: str) -> str:
        return _branch_glob(value)


class TaskUpdateIn(StrictSerializer):
    """PATCH: the fields sent are changed, the others kept; ``assigned_app_id: null``
    opens the task to every app of the org."""

    title = StrictCharField(required=False, max_length=300)
    prompt = StrictCharField(required=False, max_length=100_000)
    definition_of_done = serializers.ListField(
        child=StrictCharField(max_length=1000), max_length=100, required=False
    )
    branch_scope = StrictCharField(required=False, max_length=200)
    assigned_app_id = StrictCharField(required=False, allow_null=True, max_length=64)

    def validate_branch_scope(self, value: str) -> str:
        return _branch_glob(value)


class AnswerIn(StrictSerializer):
    answer = StrictCharField(max_length=4000)


class ReopenIn(StrictSerializer):
    feedback = StrictCharField(
        required=False,
        allow_blank=True,
        max_length=4000,
        help_text="What the next run should do differently; in every later bundle",
    )


class MessageIn(StrictSerializer):
    text = StrictCharField(max_length=4000)


class EmptyIn(StrictSerializer):
    """Routes that take no body still refuse fields they do not know."""


# --- Output serializers -----------------------------------------------------------------


class RunSummaryOut(serializers.Serializer):
    run_id = serializers.CharField(source="public_id")
    app_id = serializers.CharField(source="app.app_id")
    status = serializers.CharField()
    lease_epoch = serializers.IntegerField()
    lease_expires_at = TimestampField()
    lease_live = serializers.BooleanField()


class QuestionOut(serializers.Serializer):
    interrupt_id = serializers.CharField(source="public_id")
    run_id = serializers.CharField(source="run.public_id")
    source = serializers.ChoiceField(choices=["interrupt", "result"])
    question = serializers.CharField()
    choices = serializers.ListField(child=serializers.CharField())
    allow_free_text = serializers.BooleanField()
    asked_at = TimestampField(source="created_at")
    answer = serializers.CharField(allow_null=True)
    answered_at = TimestampField(allow_null=True)
    answered_by = UsernameField(allow_null=True)
    withdrawn_at = TimestampField(allow_null=True)


class ReopenFeedbackOut(serializers.Serializer):
    """Feedback given on a reopen, as the bundle's ``feedback`` lists it."""

    feedback_id = serializers.CharField(source="public_id")
    text = serializers.CharField()
    given_by = UsernameField(source="author", allow_null=True)
    given_at = TimestampField(source="created_at")


class HeartbeatMessageOut(serializers.Serializer):
    """A message as the heartbeat's ``messages`` hands it over (once)."""

    message_id = serializers.CharField(source="public_id")
    text = serializers.CharField()
    sent_by = UsernameField(source="author", allow_null=True)
    sent_at = TimestampField(source="created_at")


class MessageOut(HeartbeatMessageOut):
    task_id = serializers.CharField(source="task.public_id")
    delivered_at = TimestampField(allow_null=True)
    delivered_run_id = serializers.CharField(source="delivered_run.public_id", allow_null=True)


class TaskOut(serializers.Serializer):
    id = serializers.CharField(source="public_id")
    title = serializers.CharField()
    prompt = serializers.CharField()
    definition_of_done = serializers.ListField(child=serializers.CharField())
    project = serializers.CharField(source="project.slug")
    repo = serializers.CharField(source="repo.full_name")
    branch_scope = serializers.CharField()
    status = serializers.ChoiceField(choices=TaskStatus.choices)
    owner = UsernameField(allow_null=True)
    assigned_app_id = serializers.CharField(source="assigned_app.app_id", allow_null=True)
    cancel_requested = serializers.BooleanField()
    lease_epoch = serializers.IntegerField()
    live_run = RunSummaryOut(allow_null=True)
    open_question = QuestionOut(allow_null=True)
    created_at = TimestampField()
    updated_at = TimestampField()


class TaskRowOut(serializers.Serializer):
    """The compact shape for grids and ``activity.list_updated``."""

    id = serializers.CharField(source="public_id")
    title = serializers.CharField()
    status = serializers.CharField()
    project = serializers.CharField(source="project.slug")
    repo = serializers.CharField(source="repo.full_name")
    assigned_app_id = serializers.CharField(source="assigned_app.app_id", allow_null=True)
    updated_at = TimestampField()


class RepoOut(serializers.Serializer):
    full_name = serializers.CharField()
    url = serializers.CharField()
    default_branch = serializers.CharField()


class ScopeOut(serializers.Serializer):
    repo = RepoOut()
    branch_scope = serializers.CharField()


class ContextUrlField(serializers.URLField):
    """An absolute URL of a context route for the bundle's task (``?task_id=`` set), from
    ``ETHER_PUBLIC_URL`` or the request (api.public_url). ``{doc_id}`` in ``suffix`` is
    left for the harness to fill (``doc_url_template``)."""

    def __init__(self, route: str, *, query: bool = True, suffix: str = "", **kwargs: Any) -> None:
        self.route, self.query, self.suffix = route, query, suffix
        super().__init__(source="task.public_id", read_only=True, **kwargs)

    def to_representation(self, value: str) -> str:
        path = reverse(self.route) + self.suffix
        if self.query:
            path += f"?task_id={value}"
        return absolute_url(path, self.context.get("request"))


class ContextUrlTemplateField(serializers.CharField):
    """``doc_url_template``: a URL with ``{doc_id}`` still to fill, so not itself a URI
    (a plain string in the schema)."""

    def __init__(self, route: str, *, suffix: str, **kwargs: Any) -> None:
        self.url = ContextUrlField(route, suffix=suffix)
        super().__init__(source="task.public_id", read_only=True, **kwargs)

    def bind(self, field_name: str, parent: Any) -> None:
        super().bind(field_name, parent)
        self.url.bind(field_name, parent)

    def to_representation(self, value: str) -> str:
        return self.url.to_representation(value)


class ContextRefOut(serializers.Serializer):
    """The bundle's ``context``: what is in scope, and where to read it in one call
    (``pack_url``) or one by one (docs/contract.md §6, "Context in one call")."""

    doc_ids = serializers.ListField(child=serializers.CharField(), source="context.doc_ids")
    slices = serializers.ListField(child=serializers.CharField(), source="context.slices")
    pack_url = ContextUrlField("harness-context-pack")
    slices_url = ContextUrlField("harness-context")
    doc_url_template = ContextUrlTemplateField("harness-context", suffix="/doc/{doc_id}")
    tools_url = ContextUrlField("harness-tools", query=False)
    skills_url = ContextUrlField("harness-skills", query=False)


class RouteUrlField(serializers.URLField):
    """The absolute URL of one of the task's harness routes, from ``ETHER_PUBLIC_URL`` or
    the request in the serializer's context (api.public_url)."""

    def __init__(self, route: str, **kwargs: Any) -> None:
        self.route = route
        super().__init__(source="public_id", read_only=True, **kwargs)

    def to_representation(self, value: str) -> str:
        return absolute_url(reverse(self.route, args=[value]), self.context.get("request"))


class CallbacksOut(serializers.Serializer):
    report_step_url = RouteUrlField("harness-steps")
    heartbeat_url = RouteUrlField("harness-heartbeat")
    interrupt_url = RouteUrlField("harness-interrupt")
    result_url = RouteUrlField("harness-result")
    websocket_topic = serializers.SerializerMethodField()

    def get_websocket_topic(self, task: Task) -> str:
        return task_topic(task)


class CheckpointOut(serializers.Serializer):
    branch = serializers.CharField(required=False)
    head_sha = serializers.CharField(required=False)
    note = serializers.CharField(required=False)
    run_id = serializers.CharField()
    at = serializers.DateTimeField()


class BundleHarnessField(serializers.DictField):
    """The app's harness definition, resolved through its parents, as ``/v1/harnesses``
    serves it (its links from the same public origin as the callbacks)."""

    def to_representation(self, harness: Any) -> dict[str, Any]:
        origin = public_origin(self.context.get("request"))
        return harness_body(harness, base_url=origin, resolved=True)


class BundleOut(serializers.Serializer):
    """Renders ``tasks.selectors.ExecutionBundle``; pass the request in the context."""

    task_id = serializers.CharField(source="task.public_id")
    title = serializers.CharField(source="task.title")
    prompt = serializers.CharField(source="task.prompt")
    definition_of_done = serializers.ListField(
        child=serializers.CharField(), source="task.definition_of_done"
    )
    status = serializers.CharField(source="task.status")
    scope = ScopeOut(source="task")
    context = ContextRefOut(source="*")
    questions = QuestionOut(many=True)
    feedback = ReopenFeedbackOut(many=True)
    checkpoint = CheckpointOut(allow_null=True)
    harness = BundleHarnessField(allow_null=True)
    callbacks = CallbacksOut(source="task")


class HarnessTaskOut(serializers.Serializer):
    """A row of ``GET /api/harness/tasks``: a task this app may claim, and where to."""

    task_id = serializers.CharField(source="public_id")
    title = serializers.CharField()
    # Always "ready" (only ready tasks are listed); a plain string keeps the schema's
    # task status enum to TaskOut's one component.
    status = serializers.CharField(help_text="ready")
    assigned_app_id = serializers.CharField(source="assigned_app.app_id", allow_null=True)
    created_at = TimestampField()
    execution_url = RouteUrlField("harness-execution")
    claim_url = RouteUrlField("harness-claim")


class ClaimOut(serializers.Serializer):
    # Renders ``{"run": the claimed Run, "bundle": its execution bundle}``.
    run_id = serializers.CharField(source="run.public_id")
    lease_epoch = serializers.IntegerField(source="run.lease_epoch")
    lease_expires_at = TimestampField(source="run.lease_expires_at")
    bundle = BundleOut()


class HeartbeatOut(serializers.Serializer):
    # Renders a ``tasks.services.leases.Beat`` with the task's ``answers``.
    run_id = serializers.CharField(source="run.public_id")
    lease_epoch = serializers.IntegerField(source="run.lease_epoch")
    lease_expires_at = TimestampField(source="run.lease_expires_at")
    lease_seconds_left = serializers.IntegerField(source="run.lease_seconds_left")
    task_status = serializers.CharField(source="task.status")
    cancel_requested = serializers.BooleanField()
    answers = QuestionOut(many=True)
    messages = HeartbeatMessageOut(many=True)


class StepOut(serializers.Serializer):
    step_id = serializers.CharField(source="public_id")
    seq = serializers.IntegerField()


class InterruptOut(serializers.Serializer):
    interrupt_id = serializers.CharField(source="public_id")
    run_id = serializers.CharField(source="run.public_id")
    task_status = serializers.CharField(source="task.status")
    question = serializers.CharField()
    choices = serializers.ListField(child=serializers.CharField())
    allow_free_text = serializers.BooleanField()


class ResultOut(serializers.Serializer):
    # Renders a stored ``Result``: a replay answers what the first submission did, so the
    # task's status and the question's id are read from what the result recorded then.
    run_id = serializers.CharField(source="run.public_id")
    task_id = serializers.CharField(source="task.public_id")
    status = serializers.CharField()
    task_status = serializers.CharField(source="response.task_status")
    interrupt_id = serializers.CharField(source="response.interrupt_id", allow_null=True)
    finished_at = TimestampField(source="created_at")


class EventOut(serializers.Serializer):
    event = serializers.CharField()
    type = serializers.CharField()
    topic = serializers.CharField()
    seq = serializers.IntegerField()
    ts = serializers.DateTimeField()
    task_id = serializers.CharField(allow_null=True)
    kind = serializers.CharField(required=False)
    actor = serializers.DictField(required=False)
    summary = serializers.CharField(required=False)


class TicketOut(serializers.Serializer):
    ticket = serializers.CharField()
    expires_at = TimestampField()


class RealtimeConfigOut(serializers.Serializer):
    prefer_websocket = serializers.BooleanField()
    websocket_url = serializers.CharField()
    sse_url_template = serializers.CharField()
    activity_sse_url = serializers.CharField()


class ConfigOut(serializers.Serializer):
    realtime = RealtimeConfigOut()


# --- Query strings (api.query) --------------------------------------------------------


class TaskListQuery(QuerySerializer):
    status = QueryChoiceField(TaskStatus.values, required=False)


class HarnessTaskListQuery(QuerySerializer):
    # Only ready tasks can be claimed; the parameter exists so that the contract's
    # ``?status=ready`` is accepted, and any other value is a 400 rather than ignored.
    status = QueryChoiceField([TaskStatus.READY], required=False)


class ClaimNextIn(StrictSerializer):
    app_id = StrictCharField(max_length=64)
    wait = StrictIntegerField(
        required=False,
        min_value=0,
        max_value=30,
        default=0,
        help_text="Seconds to wait for a task when none is ready (0-30).",
    )


class TaskEventsQuery(QuerySerializer):
    """The view puts a Last-Event-ID header in place of ``after``: the header wins."""

    after = QueryIntegerField(
        minimum=0,
        maximum=2**63 - 1,
        message="Last-Event-ID and after are seqs: integers >= 0.",
        required=False,
        default=0,
    )


class ContextDocQuery(QuerySerializer):
    task_id = QueryCharField(
        help_text="The task whose scope",
        error_messages={"required": "Required: the task whose context to read."},
    )


class ContextQuery(ContextDocQuery):
    slices = QueryCharField(required=False, help_text=", ".join(SLICES))

    def validate_slices(self, raw: str) -> list[str]:
        names = [name.strip() for name in raw.split(",") if name.strip()]
        unknown = [name for name in names if name not in SLICES]
        if unknown:
            raise serializers.ValidationError(
                [f"Unknown slice {n!r}; use {', '.join(SLICES)}." for n in unknown]
            )
        return list(dict.fromkeys(names)) or list(SLICES)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs.setdefault("slices", list(SLICES))
        return attrs


class SkillsQuery(QuerySerializer):
    domain = QueryCharField(required=False, help_text="Case-insensitive")


PACK_DEFAULT_BYTES = 64 * 1024
PACK_MAX_BYTES = 16 * 1024 * 1024


class ContextPackQuery(ContextDocQuery):
    budget_bytes = QueryIntegerField(
        minimum=0,
        maximum=PACK_MAX_BYTES,
        message=f"budget_bytes is an integer from 0 to {PACK_MAX_BYTES}.",
        required=False,
        default=PACK_DEFAULT_BYTES,
        help_text=f"UTF-8 bytes of bodies (default {PACK_DEFAULT_BYTES})",
    )
