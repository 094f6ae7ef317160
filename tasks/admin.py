from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from tasks.models import Event, HarnessApp, Interrupt, Result, Run, Step, Task
from tasks.services.apps import harness_app_revoke


@admin.action(description="Revoke the selected apps' keys")
def revoke_keys(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> None:
    for app in queryset.select_related("org"):
        harness_app_revoke(org=app.org, app_id=app.app_id)


@admin.register(HarnessApp)
class HarnessAppAdmin(admin.ModelAdmin):
    list_display = ["app_id", "org", "harness_name", "key_prefix", "created_at", "revoked_at"]
    list_filter = ["org", "revoked_at"]
    search_fields = ["app_id", "name"]
    # Keys are issued by `manage.py create_harness_app`, which prints the key once.
    exclude = ["key_hash"]
    readonly_fields = ["key_prefix", "created_at"]
    actions = [revoke_keys]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


class ReadOnlyAdmin(admin.ModelAdmin):
    """Runs, steps and events are history: they change only through the API's services."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Task)
class TaskAdmin(ReadOnlyAdmin):
    list_display = [
        "public_id",
        "title",
        "status",
        "org",
        "repo",
        "lease_epoch",
        "updated_at",
        "pages",
    ]
    list_filter = ["status", "org"]
    search_fields = ["public_id", "title"]

    def view_on_site(self, obj: Task) -> str:
        """The admin's "View on site" button opens the task's live page."""
        return reverse("pages:task", args=[obj.public_id])

    @admin.display(description="Pages")
    def pages(self, obj: Task) -> str:
        return format_html(
            '<a href="{}">live</a> · <a href="{}">replay</a> · <a href="{}">memory</a>',
            reverse("pages:task", args=[obj.public_id]),
            reverse("pages:replay", args=[obj.public_id]),
            reverse("pages:compaction", args=[obj.public_id]),
        )


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
