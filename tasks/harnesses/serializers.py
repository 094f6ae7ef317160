"""Harness definitions (``/v1/harnesses``): the input shapes, with every field rule, and
``HarnessOut``, which renders every definition served (lists, details, bundles, previews).

The admin validates its JSON fields through these same serializers, so a definition
saved anywhere passed the same checks.
"""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from rest_framework import serializers

from api.fields import (
    StrictBooleanField,
    StrictCharField,
    StrictChoiceField,
    StrictSerializer,
    TimestampField,
)
from api.query import QueryCharField, QueryFlagField, QuerySerializer
from tasks.harnesses import definitions as d
from tasks.harnesses.selectors import harness_view
from tasks.models import Harness


class CapabilityIn(StrictSerializer):
    ref = StrictCharField(max_length=128)
    config = serializers.JSONField(required=False)

    def validate_ref(self, value: str) -> str:
        if not d.CAPABILITY_REF_RE.match(value):
            raise serializers.ValidationError(
                "A capability id: lowercase letters, digits and _ . : / -."
            )
        return value

    def validate_config(self, value: Any) -> Any:
        if not isinstance(value, dict):
            raise serializers.ValidationError("Must be an object.")
        return value


class McpServerIn(StrictSerializer):
    type = StrictChoiceField(
        choices=["http"],
        default="http",
        error_messages={"invalid_choice": "Only remote MCP servers over http are supported."},
    )
    url = StrictCharField(max_length=2000)
    auth_mode = StrictChoiceField(choices=["none", "api_key", "o_auth"], default="none")
    headers = serializers.DictField(child=StrictCharField(max_length=4000), default=dict)
    oauth_provider_id = StrictCharField(max_length=200, required=False, allow_null=True)
    tool_discovery = StrictBooleanField(default=True)

    def validate_url(self, value: str) -> str:
        error = d.url_error(value)
        if error:
            raise serializers.ValidationError(error)
        return value

    def validate_headers(self, value: dict[str, str]) -> dict[str, str]:
        if len(value) > 50:
            raise serializers.ValidationError("At most 50 headers.")
        bad = [name for name in value if not d.HEADER_NAME_RE.match(name)]
        if bad:
            raise serializers.ValidationError(f"Not HTTP header names: {', '.join(bad)}.")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs.get("auth_mode") == "o_auth" and not attrs.get("oauth_provider_id"):
            raise serializers.ValidationError(
                {"oauth_provider_id": ["Required when auth_mode is o_auth."]}
            )
        return attrs


class NetworkAccessIn(StrictSerializer):
    """Both lists are stored as arrays; an empty or absent (or null) ``allowed`` is no
    allow-list from this layer (``definitions.resolve``)."""

    allowed = serializers.ListField(
        child=StrictCharField(max_length=500),
        max_length=200,
        required=False,
        allow_null=True,
        default=list,
    )
    blocked = serializers.ListField(
        child=StrictCharField(max_length=500),
        max_length=200,
        required=False,
        allow_null=True,
        default=list,
    )

    def _patterns(self, value: list[str] | None) -> list[str]:
        if not value:
            return []
        errors = [e for e in (d.network_pattern_error(p) for p in value) if e]
        if errors:
            raise serializers.ValidationError(errors)
        return list(dict.fromkeys(value))

    def validate_allowed(self, value: list[str] | None) -> list[str]:
        return self._patterns(value)

    def validate_blocked(self, value: list[str] | None) -> list[str]:
        return self._patterns(value)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        # A null list skips validate_<field>; stored, it is an empty one all the same.
        return {"allowed": attrs.get("allowed") or [], "blocked": attrs.get("blocked") or []}


class InitialFileIn(StrictSerializer):
    path = StrictCharField(max_length=1100, trim_whitespace=False)
    content = StrictCharField(allow_blank=True, trim_whitespace=False)
    encoding = StrictChoiceField(choices=["text", "base64"], default="text")
    is_readonly = StrictBooleanField(default=False)

    def validate_path(self, value: str) -> str:
        try:
            return d.normalize_path(value)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from None

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        try:
            d.decoded_size(attrs["content"], attrs.get("encoding", "text"))
        except ValueError as exc:
            raise serializers.ValidationError({"content": [str(exc)]}) from None
        return attrs


def _nullable_text(max_length: int | None = None, **kwargs: Any) -> StrictCharField:
    return StrictCharField(
        required=False, allow_null=True, allow_blank=True, max_length=max_length, **kwargs
    )


class HarnessIn(StrictSerializer):
    """A definition as POST takes it (only ``name`` required, as in Everruns); PATCH takes
    any subset (``partial=True``). Fields Everruns' schema marks nullable take null, which
    clears them (``services.CLEARED``); the resource's required ``name`` and ``status``
    (and Ether's ``is_default``) refuse it, naming the field."""

    name = StrictCharField(max_length=200)
    display_name = _nullable_text(200)
    description = _nullable_text(4000)
    system_prompt = _nullable_text(200_000, trim_whitespace=False)
    capabilities = serializers.ListField(
        child=CapabilityIn(), max_length=100, required=False, allow_null=True
    )
    mcpServers = serializers.DictField(child=McpServerIn(), required=False, allow_null=True)
    network_access = NetworkAccessIn(required=False, allow_null=True)
    parent_harness_id = _nullable_text(200)
    initial_files = serializers.ListField(child=InitialFileIn(), required=False, allow_null=True)
    default_model_id = _nullable_text(200)
    tags = serializers.ListField(
        child=StrictCharField(max_length=50), max_length=50, required=False, allow_null=True
    )
    embedder_metadata = serializers.DictField(
        child=StrictCharField(max_length=4000, allow_blank=True, trim_whitespace=False),
        required=False,
        allow_null=True,
        help_text="Stored and served as Everruns defines it; Ether does not act on it.",
    )
    parallel_tool_calls = StrictBooleanField(
        required=False,
        allow_null=True,
        help_text="Stored and served as Everruns defines it; Ether does not act on it.",
    )
    is_default = StrictBooleanField(required=False)
    status = StrictChoiceField(
        choices=["active", "archived", "deleted"],
        required=False,
        help_text=(
            "PATCH only: archive, bring an archived definition back, or delete (the rules of "
            "DELETE apply)."
        ),
    )

    def validate_name(self, value: str) -> str:
        error = d.name_error(value)
        if error:
            raise serializers.ValidationError(error)
        return value

    def validate_capabilities(self, value: list[dict[str, Any]] | None) -> Any:
        if value is None:
            return None
        refs = [c["ref"] for c in value]
        twice = sorted({r for r in refs if refs.count(r) > 1})
        if twice:
            raise serializers.ValidationError(f"Each ref once: {', '.join(twice)} repeated.")
        return value

    def validate_mcpServers(self, value: dict[str, Any] | None) -> Any:
        if value is None:
            return None
        if len(value) > 50:
            raise serializers.ValidationError("At most 50 MCP servers.")
        bad = [key for key in value if not d.MCP_KEY_RE.match(key)]
        if bad:
            raise serializers.ValidationError(
                f"Keys are 1-64 letters, digits, _ . - : {', '.join(map(repr, bad))}."
            )
        return value

    def validate_initial_files(self, value: list[dict[str, Any]] | None) -> Any:
        if value is None:
            return None
        if len(value) > d.MAX_FILES:
            raise serializers.ValidationError(f"At most {d.MAX_FILES} starter files.")
        paths = [f["path"] for f in value]
        twice = sorted({p for p in paths if paths.count(p) > 1})
        if twice:
            raise serializers.ValidationError(f"Each path once: {', '.join(twice)} repeated.")
        total = sum(d.decoded_size(f["content"], f.get("encoding", "text")) for f in value)
        if total > d.MAX_FILES_BYTES:
            raise serializers.ValidationError(
                f"Starter files hold {total} bytes; at most {d.MAX_FILES_BYTES} (5 MiB)."
            )
        return value

    def validate_tags(self, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        return list(dict.fromkeys(t.strip() for t in value if t.strip()))

    def validate_embedder_metadata(self, value: dict[str, str] | None) -> dict[str, str] | None:
        if value is None:
            return None
        if len(value) > 50:
            raise serializers.ValidationError("At most 50 keys.")
        long = [key for key in value if not 1 <= len(key) <= 128]
        if long:
            raise serializers.ValidationError("Keys are 1 to 128 characters.")
        return value


class CopyIn(StrictSerializer):
    name = StrictCharField(max_length=200, required=False)
    display_name = StrictCharField(max_length=200, required=False)

    def validate_name(self, value: str) -> str:
        error = d.name_error(value)
        if error:
            raise serializers.ValidationError(error)
        return value


# --- Output: renders the answers, so the OpenAPI schema is the code -----------------------


class NetworkAccessField(serializers.DictField):
    """``network_access`` as served: both lists arrays (``definitions.network_out``)."""

    def to_representation(self, value: Any) -> dict[str, list[str]] | None:
        return d.network_out(value)


class InitialFileField(serializers.DictField):
    """A starter file as served: ``encoding`` and ``is_readonly`` always present."""

    def to_representation(self, value: Any) -> dict[str, Any]:
        return {
            "path": value["path"],
            "content": value["content"],
            "encoding": value.get("encoding", "text"),
            "is_readonly": value.get("is_readonly", False),
        }


class HarnessLinkField(serializers.CharField):
    """An absolute link of the definition, from the ``base_url`` in the serializer's
    context: ``self`` (its ``/v1/harnesses`` resource) or ``view`` (its admin page)."""

    def __init__(self, kind: str, **kwargs: Any) -> None:
        self.kind = kind
        super().__init__(source="harness.public_id", **kwargs)

    def to_representation(self, value: str) -> str:
        base_url = self.context["base_url"]
        if self.kind == "self":
            return f"{base_url}/v1/harnesses/{value}"
        return base_url + reverse("admin:tasks_harness_change", args=[value])


class HarnessOut(serializers.Serializer):
    # Renders a ``selectors.HarnessView`` (the reference's resource in its links wrapper);
    # pass ``base_url`` in the context. The merged fields come from the view's ``values``.
    # (A comment, not a docstring: a docstring would become the schema's description.)

    id = serializers.CharField(source="harness.public_id")
    name = serializers.CharField(source="harness.name")
    display_name = serializers.CharField(source="harness.display_name")
    description = serializers.CharField(source="harness.description", allow_null=True)
    system_prompt = serializers.CharField(source="values.system_prompt")
    capabilities = serializers.ListField(
        child=serializers.DictField(), source="values.capabilities"
    )
    mcpServers = serializers.DictField(child=serializers.DictField(), source="values.mcp_servers")
    network_access = NetworkAccessField(allow_null=True, source="values.network_access")
    parent_harness_id = serializers.CharField(source="harness.parent.public_id", allow_null=True)
    initial_files = serializers.ListField(child=InitialFileField(), source="values.initial_files")
    default_model_id = serializers.CharField(source="values.default_model_id", allow_null=True)
    status = serializers.ChoiceField(
        choices=["active", "archived", "deleted"], source="harness.status"
    )
    is_built_in = serializers.BooleanField(source="harness.is_built_in")
    is_default = serializers.BooleanField(source="harness.is_default")
    tags = serializers.ListField(child=serializers.CharField(), source="harness.tags")
    embedder_metadata = serializers.DictField(
        child=serializers.CharField(), source="harness.embedder_metadata"
    )
    parallel_tool_calls = serializers.BooleanField(
        source="harness.parallel_tool_calls", allow_null=True
    )
    created_at = TimestampField(source="harness.created_at")
    updated_at = TimestampField(source="harness.updated_at")
    archived_at = TimestampField(source="harness.archived_at", allow_null=True)
    deleted_at = TimestampField(source="harness.deleted_at", allow_null=True)
    self_url = HarnessLinkField("self")
    view_url = HarnessLinkField("view")
    ui_link = HarnessLinkField("view")
    app_count = serializers.IntegerField()
    session_count = serializers.IntegerField()
    # Only on a resolved view (``?resolved=true``, bundles, previews).
    resolved = serializers.BooleanField(required=False)
    layers = serializers.ListField(child=serializers.CharField(), required=False)
    origins = serializers.DictField(required=False)


def harness_out(harness: Harness, *, base_url: str, resolved: bool = False) -> dict[str, Any]:
    """One definition as ``/v1/harnesses`` serves it, its links from ``base_url``."""
    view = harness_view(harness, resolved=resolved)
    return HarnessOut(view, context={"base_url": base_url}).data


# --- Query strings (api.query) --------------------------------------------------------


class HarnessListQuery(QuerySerializer):
    search = QueryCharField(
        required=False, default="", trim_whitespace=True, help_text="name, text or tag"
    )
    include_archived = QueryFlagField(required=False, default=False)

    def validate_search(self, value: str) -> str:
        return value[:200]  # stripped by the field, then cut


class HarnessDetailQuery(QuerySerializer):
    resolved = QueryFlagField(
        required=False,
        default=False,
        help_text="The effective definition through its parents, with `layers` and `origins`.",
    )
