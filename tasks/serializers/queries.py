"""The task routes' query strings (api.query): one strict serializer each."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from api.query import QueryCharField, QueryChoiceField, QueryIntegerField, QuerySerializer
from corpus.selectors import SLICES
from tasks.models import TaskStatus


class TaskListQuery(QuerySerializer):
    status = QueryChoiceField(TaskStatus.values, required=False)


class HarnessTaskListQuery(QuerySerializer):
    # Only ready tasks can be claimed; the parameter exists so that the contract's
    # ``?status=ready`` is accepted, and any other value is a 400 rather than ignored.
    status = QueryChoiceField([TaskStatus.READY], required=False)


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
