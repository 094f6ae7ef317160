"""The admin's view of webhooks: each app's health, every delivery with its attempts,
and a resend action (through ``services.webhook_resend``). Secrets are never shown."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from unfold.admin import ModelAdmin, TabularInline

from tasks.models import HarnessApp
from tasks.webhooks import services
from tasks.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint


def health_text(app: HarnessApp) -> str:
    try:
        endpoint = app.webhook
    except WebhookEndpoint.DoesNotExist:
        return "off"
    if not endpoint.enabled:
        return "off (needs a URL and a secret)"
    last = (
        f"last success {timezone.localtime(endpoint.last_success_at):%Y-%m-%d %H:%M:%S}"
        if endpoint.last_success_at
        else "no success yet"
    )
    return f"{endpoint.failures_in_row} failure(s) in a row, {last}"


class WebhookHealthAdmin(ModelAdmin):
    """Mixed into the harness app admin: the webhook's URL and health."""

    @admin.display(description="webhook")
    def webhook_health(self, obj: HarnessApp) -> str:
        return health_text(obj)

    @admin.display(description="webhook URL")
    def webhook_url(self, obj: HarnessApp) -> str:
        endpoint = WebhookEndpoint.objects.filter(app=obj).first()
        return endpoint.url if endpoint and endpoint.url else "—"

    @admin.display(description="webhook deliveries")
    def webhook_deliveries(self, obj: HarnessApp) -> str:
        url = reverse("admin:tasks_webhookdelivery_changelist") + f"?app__id__exact={obj.pk}"
        pending = WebhookDelivery.objects.pending().filter(app=obj).count()
        failed = WebhookDelivery.objects.filter(app=obj, status="failed").count()
        return format_html('<a href="{}">{} pending, {} given up</a>', url, pending, failed)


@admin.action(description="Resend the selected deliveries (same webhook-id, due now)")
def resend(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> None:
    count = 0
    for delivery in queryset:
        if delivery.status != "pending":
            services.webhook_resend(delivery=delivery)
            count += 1
    modeladmin.message_user(request, f"{count} delivery(ies) queued again.", messages.SUCCESS)


resend.allowed_permissions = ("resend",)  # type: ignore[attr-defined]


class AttemptInline(TabularInline):
    model = WebhookAttempt
    fields = ["started_at", "duration_ms", "status_code", "ok", "error", "url", "sender"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ["-pk"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ModelAdmin):
    list_display = [
        "public_id",
        "app",
        "task",
        "type",
        "status",
        "attempts",
        "next_attempt_at",
        "delivered_at",
        "last_error",
    ]
    list_filter = ["status", "type", "app"]
    search_fields = ["public_id", "task__public_id", "app__app_id"]
    list_select_related = ["app__org", "task"]
    readonly_fields = [
        "public_id",
        "app",
        "task",
        "type",
        "status",
        "attempts",
        "next_attempt_at",
        "claimed_until",
        "claimed_by",
        "created_at",
        "delivered_at",
        "last_error",
        "body",
    ]
    fields = readonly_fields
    inlines = [AttemptInline]
    actions = [resend]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_resend_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("tasks.change_webhookdelivery")
