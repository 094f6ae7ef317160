from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join
from unfold.admin import ModelAdmin

from api.errors import DomainError, describe
from api.problems import _flatten_errors
from tasks.admin import task_admin  # noqa: F401 (registers the Task admin)
from tasks.harnesses.definitions import ALLOW_NOTHING
from tasks.harnesses.keys import harness_app_rename, harness_app_revoke
from tasks.harnesses.selectors import harness_resolved
from tasks.harnesses.serializers import HarnessIn
from tasks.harnesses.services import (
    attachable_check,
    default_check,
    depth_check,
    harness_app_attach,
    harness_create,
    harness_update,
    name_check,
    parent_check,
)
from tasks.models import Event, Harness, HarnessApp, Interrupt, Result, Run, Step
from tasks.webhooks.admin import WebhookHealthAdmin


@admin.action(description="Revoke the selected apps' keys")
def revoke_keys(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> None:
    for app in queryset.select_related("org"):
        harness_app_revoke(org=app.org, app_id=app.app_id)


class HarnessAppForm(forms.ModelForm):
    class Meta:
        model = HarnessApp
        fields = ["name", "harness"]

    def clean_harness(self) -> Harness | None:
        harness = self.cleaned_data.get("harness")
        try:
            # The same rule as `manage.py attach_harness`: a definition of the app's org
            # (or a built-in), and an active one.
            return attachable_check(self.instance.org, harness.public_id if harness else None)
        except DomainError as exc:
            raise forms.ValidationError(describe(exc)) from None


@admin.register(HarnessApp)
class HarnessAppAdmin(WebhookHealthAdmin):
    """Apps are registered and rotated by `manage.py create_harness_app` (which prints the
    key once) and revoked by the action; here only the name and the definition change,
    each through its service."""

    form = HarnessAppForm
    list_display = [
        "app_id",
        "org",
        "harness",
        "key_prefix",
        "created_at",
        "revoked_at",
        "webhook_health",
    ]
    list_filter = ["org", "revoked_at"]
    list_select_related = ["org", "harness", "webhook"]
    search_fields = ["app_id", "name"]
    webhook = ["webhook_url", "webhook_health", "webhook_deliveries"]
    fields = [
        "org",
        "app_id",
        "name",
        "harness",
        "key_prefix",
        "created_at",
        "revoked_at",
        *webhook,
    ]
    readonly_fields = ["org", "app_id", "key_prefix", "created_at", "revoked_at", *webhook]
    actions = [revoke_keys]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Runs name their app: revoke it instead (the action ends its leases too).
        return False

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        if "name" in form.changed_data:
            harness_app_rename(app=obj, name=form.cleaned_data["name"])
        if "harness" in form.changed_data:
            harness = form.cleaned_data["harness"]
            harness_app_attach(app=obj, ref=harness.public_id if harness else None)
        obj.refresh_from_db()


class ReadOnlyAdmin(ModelAdmin):
    """Runs, steps and events are history: they change only through the API's services."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Run)
class RunAdmin(ReadOnlyAdmin):
    list_display = ["public_id", "task", "app", "status", "lease_epoch", "lease_expires_at"]
    list_filter = ["status"]
    search_fields = ["public_id", "task__public_id"]


@admin.register(Step)
class StepAdmin(ReadOnlyAdmin):
    list_display = ["public_id", "task", "run", "seq", "phase", "user_message", "created_at"]
    search_fields = ["public_id", "task__public_id"]


@admin.register(Interrupt)
class InterruptAdmin(ReadOnlyAdmin):
    list_display = ["public_id", "task", "question", "answer", "answered_at", "withdrawn_at"]
    search_fields = ["public_id", "task__public_id"]


@admin.register(Result)
class ResultAdmin(ReadOnlyAdmin):
    list_display = ["run", "task", "status", "agent_status", "created_at"]
    list_filter = ["status"]


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    list_display = ["topic", "seq", "name", "created_at"]
    list_filter = ["name"]
    search_fields = ["topic"]


# --- harness definitions -------------------------------------------------------------------
class HarnessForm(forms.ModelForm):
    """Edits the local fields; every value passes the API's own checks
    (``tasks/harnesses/serializers.py`` and the parent rules of the services)."""

    class Meta:
        model = Harness
        fields = [
            "org",
            "name",
            "display_name",
            "description",
            "system_prompt",
            "parent",
            "default_model_id",
            "capabilities",
            "mcp_servers",
            "network_access",
            "initial_files",
            "tags",
            "is_default",
        ]

    def _get_validation_exclusions(self) -> set[str]:
        # Model validation would refuse a second default (`one_default_harness`); the
        # service unsets the previous default in the same transaction instead.
        return {*super()._get_validation_exclusions(), "is_default"}

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        # A saved definition stays in its org (the field is read-only on change).
        org = cleaned.get("org") if "org" in self.fields else self.instance.org
        if org is None:
            raise forms.ValidationError("A definition belongs to an org.")
        parent = cleaned.get("parent")
        data = {
            "name": cleaned.get("name") or "",
            "display_name": cleaned.get("display_name") or cleaned.get("name") or "",
            "description": cleaned.get("description"),
            "system_prompt": cleaned.get("system_prompt") or "",
            "capabilities": cleaned.get("capabilities") or [],
            "mcpServers": cleaned.get("mcp_servers") or {},
            "network_access": cleaned.get("network_access"),
            "initial_files": cleaned.get("initial_files") or [],
            "default_model_id": cleaned.get("default_model_id") or None,
            "tags": cleaned.get("tags") or [],
        }
        serializer = HarnessIn(data=data)
        if not serializer.is_valid():
            for name, messages in _flatten_errors(serializer.errors).items():
                self.add_error(None, f"{name}: {' '.join(messages)}")
            return cleaned
        valid = serializer.validated_data
        current = self.instance if self.instance.pk else None
        try:
            name_check(org, valid["name"], current)
            checked = parent_check(org, parent.public_id if parent else None, current)
            depth_check(checked, current)
            if current is not None:
                default_check(current, bool(cleaned.get("is_default")))
        except DomainError as exc:
            raise forms.ValidationError(describe(exc)) from None
        cleaned.update(
            name=valid["name"],
            capabilities=valid.get("capabilities", []),
            mcp_servers=valid.get("mcpServers", {}),
            network_access=valid.get("network_access"),
            initial_files=valid.get("initial_files", []),
            tags=valid.get("tags", []),
        )
        return cleaned


@admin.register(Harness)
class HarnessAdmin(ModelAdmin):
    form = HarnessForm
    list_display = ["name", "display_name", "org", "status", "parent", "is_built_in", "is_default"]
    list_filter = ["status", "is_built_in", "org"]
    search_fields = ["name", "display_name", "description"]
    readonly_fields = ["public_id", "status", "resolved_view", "created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["public_id", "org", "name", "display_name", "description", "status"]}),
        (
            "Local fields",
            {
                "fields": [
                    "parent",
                    "system_prompt",
                    "capabilities",
                    "mcp_servers",
                    "network_access",
                    "initial_files",
                    "default_model_id",
                    "tags",
                    "is_default",
                ]
            },
        ),
        ("Resolved through its parents", {"fields": ["resolved_view"]}),
        (None, {"fields": ["created_at", "updated_at"]}),
    ]

    def get_object(
        self, request: HttpRequest, object_id: str, from_field: str | None = None
    ) -> Any:
        # view_url names a definition by its public id: integer keys never leave the server.
        if object_id.startswith("harness_"):
            return self.get_queryset(request).filter(public_id=object_id).first()
        return super().get_object(request, object_id, from_field)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_change_permission(request, obj) and not (obj and obj.is_built_in)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Deleting goes through the API's archive-then-delete rules.
        return False

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        # The services move no definition between orgs (its children and apps stay behind).
        return [*self.readonly_fields, "org"] if obj is not None else self.readonly_fields

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        """Written by the API's services, so the admin gets their rules (one default per
        org, only an active default, names, parents, depth) and their transactions."""
        cleaned = form.cleaned_data
        parent = cleaned.get("parent")
        data = {
            "name": cleaned["name"],
            "display_name": cleaned.get("display_name") or "",
            "description": cleaned.get("description"),
            "system_prompt": cleaned.get("system_prompt") or "",
            "parent_harness_id": parent.public_id if parent else None,
            "capabilities": cleaned.get("capabilities") or [],
            "mcpServers": cleaned.get("mcp_servers") or {},
            "network_access": cleaned.get("network_access"),
            "initial_files": cleaned.get("initial_files") or [],
            "default_model_id": cleaned.get("default_model_id") or None,
            "tags": cleaned.get("tags") or [],
            "is_default": bool(cleaned.get("is_default")),
        }
        if change:
            saved = harness_update(org=obj.org, harness=obj, data=data)
        else:
            saved = harness_create(org=cleaned["org"], data=data)
        obj.pk = saved.pk
        obj.refresh_from_db()

    @admin.display(description="Effective definition")
    def resolved_view(self, obj: Harness) -> str:
        if not obj.pk:
            return "Saved definitions show their resolved result here."
        chain, effective = harness_resolved(obj)
        names = {h.public_id: h.name for h in chain}

        def source(layer_id: Any) -> str:
            if isinstance(layer_id, list):
                return ", ".join(names.get(i, i) for i in layer_id)
            return names.get(layer_id, "—") if layer_id else "—"

        o = effective.origins
        rows: list[tuple[str, str, str]] = [
            ("layers (root first)", " → ".join(h.name for h in chain), ""),
            ("system_prompt", effective.system_prompt, source(o["system_prompt"])),
            ("default_model_id", effective.default_model_id or "—", source(o["default_model_id"])),
        ]
        rows += [
            (
                f"capability {c['ref']}",
                json.dumps(c.get("config", {})),
                source(o["capabilities"][c["ref"]]),
            )
            for c in effective.capabilities
        ]
        rows += [
            (f"mcpServers.{key}", server["url"], source(o["mcpServers"][key]))
            for key, server in effective.mcp_servers.items()
        ]
        rows += [
            (
                f"file {f['path']}",
                f"{f.get('encoding', 'text')}, {len(f['content'])} chars"
                + (", read-only" if f.get("is_readonly") else ""),
                source(o["initial_files"][f["path"]]),
            )
            for f in effective.initial_files
        ]
        network = effective.network_access
        if network is not None:
            allowed = network["allowed"]
            rows.append(
                (
                    "network allowed",
                    "nothing"
                    if allowed == [ALLOW_NOTHING]
                    else ", ".join(allowed) or "everything not blocked",
                    source(o["network_access"]["allowed"]),
                )
            )
            rows += [
                (f"network blocked {entry}", "blocked", source(layers))
                for entry, layers in o["network_access"]["blocked"].items()
            ]
        body = format_html_join(
            "",
            '<tr><th style="white-space:nowrap">{}</th><td><pre style="white-space:pre-wrap;'
            'margin:0">{}</pre></td><td>{}</td></tr>',
            rows,
        )
        return format_html(
            "<table><thead><tr><th>field</th><th>effective value</th><th>from layer</th>"
            "</tr></thead><tbody>{}</tbody></table>",
            body,
        )
