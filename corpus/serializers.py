"""Inputs and output shapes of the document API."""

from __future__ import annotations

from rest_framework import serializers

from api.fields import StrictCharField, StrictChoiceField, StrictSerializer

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


class DocumentOut(serializers.Serializer):
    id = serializers.CharField()
    kind = serializers.CharField()
    path = serializers.CharField()
    title = serializers.CharField()
    version = serializers.IntegerField()
    body = serializers.CharField()
    html = serializers.CharField(help_text="The sanitized rendering, as the admin preview shows")
    updated_at = serializers.DateTimeField()
    updated_by = serializers.CharField(allow_null=True)


class DocumentRowOut(serializers.Serializer):
    id = serializers.CharField()
    kind = serializers.CharField()
    path = serializers.CharField()
    title = serializers.CharField()
    version = serializers.IntegerField()
    bytes = serializers.IntegerField()
    sha256 = serializers.CharField()
    updated_at = serializers.DateTimeField()
    updated_by = serializers.CharField(allow_null=True)


class VersionOut(serializers.Serializer):
    version = serializers.IntegerField()
    title = serializers.CharField()
    body = serializers.CharField()
    sha256 = serializers.CharField()
    bytes = serializers.IntegerField()
    note = serializers.CharField()
    created_at = serializers.DateTimeField()
    created_by = serializers.CharField(allow_null=True)
