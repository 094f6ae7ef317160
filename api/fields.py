"""Strict input fields (JSON types are checked, not coerced), and output fields.

DRF's own fields turn ``42`` into ``"42"`` and ``"5"`` into ``5``; a harness that sends
the wrong type should hear about it instead.
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from api.rfc3339 import iso


class StrictCharField(serializers.CharField):
    default_error_messages = {"not_a_string": "Must be a string."}

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("not_a_string")
        return super().to_internal_value(data)


class StrictIntegerField(serializers.IntegerField):
    default_error_messages = {"not_an_integer": "Must be an integer."}

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("not_an_integer")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    default_error_messages = {"not_a_boolean": "Must be true or false."}

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("not_a_boolean")
        return data


class StrictChoiceField(serializers.ChoiceField):
    default_error_messages = {"not_a_string": "Must be a string."}

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, str):
            self.fail("not_a_string")
        return super().to_internal_value(data)


class StrictSerializer(serializers.Serializer):
    """Refuses fields it does not know: a typo must not be silently dropped."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        return super().to_internal_value(data)


def validated(serializer_class: type[serializers.Serializer], data: Any) -> dict[str, Any]:
    """Validate ``data`` with ``serializer_class`` and return the clean values."""
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


class TimestampField(serializers.DateTimeField):
    """Output: RFC 3339 in UTC with a ``Z`` (``api.rfc3339.iso``), whatever the active zone."""

    def to_representation(self, value: Any) -> str | None:
        return iso(value)


class UsernameField(serializers.CharField):
    """Output: a user's username (``None`` for no user, which DRF renders itself)."""

    def to_representation(self, value: Any) -> str:
        return value.get_username()
