"""Query strings parsed by serializers (docs/api.md, "Query strings").

Each route with query parameters has one ``QuerySerializer`` subclass in its app's
serializers module; the view validates ``request.query_params`` with it and documents it
with ``@extend_schema(parameters=[TheQuery])``, so the schema is the parser. A
``ValidationError`` is the usual ``400 validation_error`` with ``errors.<param>``.
Pagination's ``limit`` and ``cursor`` belong to ``api.pagination`` and stay there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from rest_framework import serializers

from api.params import bounded_int


class QuerySerializer(serializers.Serializer):
    """An empty parameter counts as absent, a repeated one counts once (the last), and
    unknown ones are ignored (``limit``, ``cursor`` and the like are someone else's)."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            # QueryDict.get is the last value of a repeated parameter.
            data = {name: data.get(name) for name in data if data.get(name) not in (None, "")}
        return super().to_internal_value(data)


class QueryIntegerField(serializers.IntegerField):
    """ASCII digits only (``api.params``): fullwidth digits, ``+1``, `` 1`` and ``1_0`` are 400."""

    def __init__(self, *, minimum: int, maximum: int, message: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.minimum, self.maximum, self.message = minimum, maximum, message

    def to_internal_value(self, data: Any) -> int:
        value = None
        if isinstance(data, str):
            value = bounded_int(data, minimum=self.minimum, maximum=self.maximum)
        if value is None:
            raise serializers.ValidationError(self.message)
        return value


class QueryFlagField(serializers.BooleanField):
    """``true``/``1``/``yes`` or ``false``/``0``/``no``, in any case; nothing else."""

    TRUE, FALSE = frozenset({"true", "1", "yes"}), frozenset({"false", "0", "no"})
    default_error_messages = {"invalid": "Must be true or false."}

    def to_internal_value(self, data: Any) -> bool:
        raw = data.lower() if isinstance(data, str) else None
        if raw in self.TRUE:
            return True
        if raw in self.FALSE:
            return False
        self.fail("invalid")


class QueryChoiceField(serializers.ChoiceField):
    """One of ``choices``, exactly as spelled; the error lists them."""

    def __init__(self, choices: Sequence[str], **kwargs: Any) -> None:
        message = f"Must be one of {', '.join(choices)}."
        kwargs.setdefault("error_messages", {"invalid_choice": message})
        # Blank never reaches the field (QuerySerializer drops it); allowed, the schema
        # does not claim a minLength the parser does not enforce.
        super().__init__(choices=list(choices), allow_blank=True, **kwargs)


class QueryCharField(serializers.CharField):
    """Text as sent (no trimming); blank is absent, so the schema has no minLength."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(allow_blank=True, **kwargs)


class QueryChoiceFieldSchema(OpenApiSerializerFieldExtension):
    """A plain string enum: no ``""`` for the blank the parser never sees, and no
    generated choice list in the description (the values are their own labels)."""

    target_class = QueryChoiceField

    def map_serializer_field(self, auto_schema: Any, direction: Any) -> dict[str, Any]:
        return {"type": "string", "enum": sorted(self.target.choices, key=str)}
