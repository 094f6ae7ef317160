"""Input shapes of harness definitions (``/v1/harnesses``), with every field rule.

The admin validates its JSON fields through these same serializers, so a definition
saved anywhere passed the same checks.
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from api.fields import (
    StrictBooleanField,
    StrictCharField,
    StrictChoiceField,
    StrictSerializer,
)
from api.query import QueryCharField, QueryFlagField, QuerySerializer
from tasks.harnesses import definitions as d


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


# --- output, for the OpenAPI schema -----------------------------------------------------
class HarnessOut(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    display_name = serializers.CharField()
    description = serializers.CharField(allow_null=True)
    system_prompt = serializers.CharField()
    capabilities = serializers.ListField(child=serializers.DictField())
    mcpServers = serializers.DictField(child=serializers.DictField())
    network_access = serializers.DictField(allow_null=True)
    parent_harness_id = serializers.CharField(allow_null=True)
    initial_files = serializers.ListField(child=serializers.DictField())
    default_model_id = serializers.CharField(allow_null=True)
    status = serializers.ChoiceField(choices=["active", "archived", "deleted"])
    is_built_in = serializers.BooleanField()
    is_default = serializers.BooleanField()
    tags = serializers.ListField(child=serializers.CharField())
    embedder_metadata = serializers.DictField(child=serializers.CharField())
    parallel_tool_calls = serializers.BooleanField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    archived_at = serializers.DateTimeField(allow_null=True)
    deleted_at = serializers.DateTimeField(allow_null=True)
    self_url = serializers.CharField()
    view_url = serializers.CharField()
    ui_link = serializers.CharField()
    app_count = serializers.IntegerField()
    session_count = serializers.IntegerField()
    resolved = serializers.BooleanField(required=False)
    layers = serializers.ListField(child=serializers.CharField(), required=False)
    origins = serializers.DictField(required=False)


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
