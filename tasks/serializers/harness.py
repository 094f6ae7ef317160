"""What the harness routes answer (and so their OpenAPI schema): the execution bundle
with its absolute URLs, claims, heartbeats, steps, interrupts and results."""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from rest_framework import serializers

from api.fields import TimestampField
from api.public_url import absolute_url, public_origin
from tasks.events import task_topic
from tasks.harnesses.serializers import harness_out
from tasks.models import Task
from tasks.serializers.outputs import HeartbeatMessageOut, QuestionOut, ReopenFeedbackOut


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
        return harness_out(harness, base_url=origin, resolved=True)


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
