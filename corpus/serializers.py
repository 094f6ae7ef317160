"""Inputs and output shapes of the document API."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from api.fields import (
    StrictBooleanField,
    StrictCharField,
    StrictChoiceField,
    StrictSerializer,
    TimestampField,
    UsernameField,
)
from api.query import QueryCharField, QueryChoiceField, QuerySerializer
from corpus.models import DocumentKind
from corpus.selectors import SLICES, document_html

EDITABLE_KINDS = ["profile", "project", "repo"]
BODY_MAX = 512 * 1024


class DocumentCreateIn(StrictSerializer):
    kind = StrictChoiceField(choices=EDITABLE_KINDS)
    owner = StrictCharField(required=False, max_length=150)
    project = StrictCharField(required=False, max_length=64)
    repo = StrictCharField(required=False, max_length=200)
    title = StrictCharField(required=False, max_length=200, allow_blank=True)
    body = StrictCharField(max_length=BODY_MAX, allow_blank=True, trim_whitespace=False)


class DocumentUpdateIn(StrictSerializer):
    body = StrictCharField(max_length=BODY_MAX, allow_blank=True, trim_whitespace=False)
    title = StrictCharField(required=False, max_length=200, allow_blank=True)


class HtmlField(serializers.CharField):
    """A document's sanitized HTML, read from (or rendered into) its current version."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(source="*", **kwargs)

    def to_representation(self, value: Any) -> str:
        return document_html(value)


class DocumentOut(serializers.Serializer):
    id = serializers.CharField(source="public_id")
    kind = serializers.CharField()
    path = serializers.CharField()
    title = serializers.CharField()
    version = serializers.IntegerField()
    body = serializers.CharField()
    html = HtmlField(help_text="The sanitized rendering, as the admin preview shows")
    updated_at = TimestampField()
    updated_by = UsernameField(allow_null=True)


class DocumentRowOut(serializers.Serializer):
    id = serializers.CharField(source="public_id")
    kind = serializers.CharField()
    path = serializers.CharField()
    title = serializers.CharField()
    version = serializers.IntegerField()
    bytes = serializers.IntegerField(source="size")
    sha256 = serializers.CharField()
    updated_at = TimestampField()
    updated_by = UsernameField(allow_null=True)


class VersionOut(serializers.Serializer):
    version = serializers.IntegerField()
    title = serializers.CharField()
    body = serializers.CharField()
    sha256 = serializers.CharField()
    bytes = serializers.IntegerField(source="body_bytes")
    note = serializers.CharField()
    created_at = TimestampField()
    created_by = UsernameField(allow_null=True)


class DocMetaOut(serializers.Serializer):  # a document as a task's context lists it
    id = serializers.CharField(source="public_id")
    path = serializers.CharField()
    title = serializers.CharField()
    bytes = serializers.IntegerField(source="size")
    sha256 = serializers.CharField()
    version = serializers.IntegerField()
    updated_at = TimestampField()


class SliceOut(serializers.Serializer):
    name = serializers.ChoiceField(choices=SLICES)
    docs = DocMetaOut(many=True)


class DocBodyOut(serializers.Serializer):
    id = serializers.CharField(source="public_id")
    path = serializers.CharField()
    title = serializers.CharField()
    version = serializers.IntegerField()
    body = serializers.CharField()


class PackDocOut(serializers.Serializer):
    """A document of a context pack (``corpus.packing.PackedDoc``), body and all."""

    id = serializers.CharField(source="document.public_id")
    path = serializers.CharField(source="document.path")
    title = serializers.CharField(source="document.title")
    version = serializers.IntegerField(source="document.version")
    sha256 = serializers.CharField(source="document.sha256")
    etag = serializers.CharField(
        source="document.etag", help_text="The document route's ETag for this version"
    )
    changed_since_last_run = serializers.BooleanField()
    body = serializers.CharField(source="document.body")


class PackOmittedOut(serializers.Serializer):
    id = serializers.CharField(source="document.public_id")
    path = serializers.CharField(source="document.path")
    bytes = serializers.IntegerField(source="document.size")
    reason = serializers.ChoiceField(choices=["over_budget", "folded_into_memory"])


class ToolOut(serializers.Serializer):
    name = serializers.CharField()
    description = serializers.CharField()
    input_schema = serializers.DictField()


class SkillOut(serializers.Serializer):
    name = serializers.CharField()
    domain = serializers.CharField()
    description = serializers.CharField()
    body = serializers.CharField()


class DocumentListQuery(QuerySerializer):
    kind = QueryChoiceField(DocumentKind.values, required=False)
    project = QueryCharField(required=False)
    repo = QueryCharField(required=False)


class PromoteIn(StrictSerializer):
    """A part of a task's working note or memory, to append to the repository's document."""

    source = StrictCharField(max_length=120, help_text="Path of the note: working/… or memory/…")
    text = StrictCharField(max_length=32 * 1024)
    save = StrictBooleanField(
        default=False, help_text="false: only the diff; true: store it (send If-Match)."
    )


class PromoteOut(serializers.Serializer):
    repo = serializers.CharField()
    saved = serializers.BooleanField()
    diff = serializers.CharField(help_text="Unified diff of repo.md, now → after")
    before = serializers.CharField(allow_blank=True)
    after = serializers.CharField()
    document = DocumentOut(allow_null=True, help_text="repo.md as it is now (or as saved)")
    etag = serializers.CharField(allow_null=True, help_text="Send it as If-Match to save")
