"""Strict inputs of the task routes: what a harness and a person send in a body."""

from __future__ import annotations

import re
from typing import Any

from django.core.validators import RegexValidator
from rest_framework import serializers

from api.fields import (
    StrictBooleanField,
    StrictCharField,
    StrictChoiceField,
    StrictIntegerField,
    StrictSerializer,
)
from tasks.models import ResultStatus

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


class ClaimNextIn(StrictSerializer):
    app_id = StrictCharField(max_length=64)
    wait = StrictIntegerField(
        required=False,
        min_value=0,
        max_value=30,
        default=0,
        help_text="Seconds to wait for a task when none is ready (0-30).",
    )


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
