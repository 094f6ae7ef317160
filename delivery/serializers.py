"""The delivery routes' strict inputs and the serializers that render their answers."""

from __future__ import annotations

from rest_framework import serializers

from api.fields import StrictCharField, StrictChoiceField, StrictSerializer, TimestampField
from api.query import QueryIntegerField, QuerySerializer


class DeliveryOut(serializers.Serializer):
    # Renders a Delivery from ``delivery.selectors.delivery_get`` (``latest_version``).
    id = serializers.CharField(source="public_id")
    task_id = serializers.CharField(source="task.public_id")
    run_id = serializers.CharField(source="run.public_id")
    status = serializers.ChoiceField(choices=["submitted", "blocked", "no_changes"])
    version = serializers.IntegerField()
    latest_version = serializers.IntegerField()
    created_at = TimestampField()
    blocks = serializers.ListField(
        child=serializers.DictField(), help_text="Typed blocks; see docs/delivery.md"
    )


class FeedbackIn(StrictSerializer):
    rating = StrictChoiceField(choices=["up", "down"])
    comment = StrictCharField(required=False, allow_blank=True, max_length=4000)


class FeedbackOut(serializers.Serializer):
    # Renders ``{"delivery": the rated Delivery, "rating": …, "comment": …}``.
    task_id = serializers.CharField(source="delivery.task.public_id")
    version = serializers.IntegerField(source="delivery.version")
    rating = serializers.CharField()
    comment = serializers.CharField()


class DeliveryQuery(QuerySerializer):
    version = QueryIntegerField(
        minimum=1, maximum=999_999_999, message="Must be a positive integer.", required=False
    )
