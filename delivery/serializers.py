"""Input and output shapes of the delivery routes (strict inputs, documented outputs)."""

from __future__ import annotations

from rest_framework import serializers

from api.fields import StrictCharField, StrictChoiceField, StrictSerializer
from api.query import QueryIntegerField, QuerySerializer


class DeliveryOut(serializers.Serializer):
    id = serializers.CharField()
    task_id = serializers.CharField()
    run_id = serializers.CharField()
    status = serializers.ChoiceField(choices=["submitted", "blocked", "no_changes"])
    version = serializers.IntegerField()
    latest_version = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    blocks = serializers.ListField(
        child=serializers.DictField(), help_text="Typed blocks; see docs/delivery.md"
    )


class FeedbackIn(StrictSerializer):
    rating = StrictChoiceField(choices=["up", "down"])
    comment = StrictCharField(required=False, allow_blank=True, max_length=4000)


class FeedbackOut(serializers.Serializer):
    task_id = serializers.CharField()
    version = serializers.IntegerField()
    rating = serializers.CharField()
    comment = serializers.CharField()


class DeliveryQuery(QuerySerializer):
    version = QueryIntegerField(
        minimum=1, maximum=999_999_999, message="Must be a positive integer.", required=False
    )
