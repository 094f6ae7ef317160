"""The shapes the pages read (their templates and their embedded JSON), each written once.

Where a page shows what an API route or a realtime frame also carries, its serializer is
that route's with the members the page has no use for taken out (``= None``)."""

from __future__ import annotations

from django.utils.safestring import SafeString, mark_safe
from rest_framework import serializers

from api.fields import TimestampField
from corpus.models import Compaction, Document
from corpus.selectors import document_html
from delivery.serializers import DeliveryOut
from tasks.serializers.outputs import RunSummaryOut


class StepLineOut(serializers.Serializer):
    """A narration line, in the keys of an ``os.harness.step`` frame."""

    seq = serializers.IntegerField()
    ts = TimestampField(source="created_at")
    phase = serializers.CharField()
    user_message = serializers.CharField()
    internal_label = serializers.CharField()
    run_id = serializers.CharField(source="run.public_id")


class DeliveryCardOut(DeliveryOut):
    """A stored delivery as the task and replay pages play it (the API's, task-less)."""

    task_id = None
    latest_version = None


class RunLineOut(RunSummaryOut):
    """A run on the replay page's timeline: who ran it and how it ended."""

    lease_epoch = None
    lease_expires_at = None
    lease_live = None


# The compaction page formats its own times (``|date``): they stay datetimes.


class WorkingNoteOut(serializers.Serializer):
    """A run's working document; context: ``run_apps`` (run id → app id) and ``folded``
    (the ids the latest compaction took in)."""

    id = serializers.CharField(source="public_id")
    path = serializers.CharField()
    title = serializers.CharField()
    run_id = serializers.CharField(source="run_ref")
    app_id = serializers.SerializerMethodField()
    version = serializers.IntegerField()
    bytes = serializers.IntegerField(source="size")
    created_at = serializers.ReadOnlyField()
    updated_at = serializers.ReadOnlyField()
    folded = serializers.SerializerMethodField()
    body = serializers.CharField()

    def get_app_id(self, doc: Document) -> str:
        return self.context["run_apps"].get(doc.run_ref, "")

    def get_folded(self, doc: Document) -> bool:
        return doc.public_id in self.context["folded"]


class MemoryOut(serializers.Serializer):
    id = serializers.CharField(source="public_id")
    path = serializers.CharField()
    version = serializers.IntegerField()
    bytes = serializers.IntegerField(source="size")
    updated_at = serializers.ReadOnlyField()
    body = serializers.CharField()
    html = serializers.SerializerMethodField()

    def get_html(self, memory: Document) -> SafeString:
        # corpus.rendering is the one sanitizing renderer (nh3 allowlist): its output is
        # safe. document_html renders each version once and keeps it (a view is no write).
        return mark_safe(document_html(memory))


class FoldOut(serializers.Serializer):
    """One compaction; context: ``bodies`` ((memory pk, version) → the memory then)."""

    at = serializers.ReadOnlyField(source="created_at")
    inputs = serializers.ReadOnlyField()
    bytes_before = serializers.IntegerField()
    bytes_after = serializers.IntegerField()
    budget_bytes = serializers.IntegerField()
    summariser = serializers.CharField()
    # What the fold kept and what it dropped (docs/memory.md), never a bare "N% smaller".
    kept_bytes = serializers.IntegerField()
    dropped_bytes = serializers.IntegerField()
    dropped = serializers.ReadOnlyField()
    fallback = serializers.CharField()
    memory_version = serializers.IntegerField()
    memory_body = serializers.SerializerMethodField()

    def get_memory_body(self, fold: Compaction) -> str:
        return self.context["bodies"].get((fold.memory_id, fold.memory_version), "")
