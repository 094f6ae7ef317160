"""What the product task routes answer (and so their OpenAPI schema): tasks, their runs,
questions, messages, timeline entries, tickets and the client configuration."""

from __future__ import annotations

from rest_framework import serializers

from api.fields import TimestampField, UsernameField
from tasks.models import TaskStatus


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


class ConfigOut(serializers.Serializer):
    realtime = RealtimeConfigOut()
