"""``/api/harness-apps/{app_id}/webhook/*``: an app's signing secret and a test message
(the URL is set with ``PATCH /api/harness-apps/{app_id}``). User token or session;
another org's app is 404."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.auth import UserAPIView
from api.errors import NotFound
from api.fields import StrictSerializer, validated
from api.idempotency import idempotent
from api.rfc3339 import iso
from api.views import POST_PROBLEMS, body, problems
from tasks.models import HarnessApp
from tasks.webhooks import services
from tasks.webhooks.models import WebhookEndpoint


class EmptyIn(StrictSerializer):
    pass


class WebhookUrlOut(serializers.CharField):
    """The app's webhook URL, or null (read from the app: ``source="*"``)."""

    def to_representation(self, app: HarnessApp) -> str | None:
        endpoint = getattr(app, "webhook", None)
        return endpoint.url if endpoint is not None and endpoint.url else None


class WebhookHealthOut(serializers.Serializer):
    """The app's webhook health (read from the app: ``source="*"``); never a secret."""

    enabled = serializers.BooleanField(help_text="A URL and a secret are both set.")
    has_secret = serializers.BooleanField()
    last_success_at = serializers.DateTimeField(allow_null=True)
    last_failure_at = serializers.DateTimeField(allow_null=True)
    failures_in_row = serializers.IntegerField()

    def to_representation(self, app: HarnessApp) -> dict[str, Any]:
        return webhook_health(app)


class SecretOut(serializers.Serializer):
    secret = serializers.CharField(help_text="whsec_…: shown this once.")
    previous_secret_expires_at = serializers.DateTimeField(
        allow_null=True,
        help_text="Until then the replaced secret still signs, as a second signature.",
    )


class TestOut(serializers.Serializer):
    id = serializers.CharField(help_text="The message's webhook-id (msg_…).")
    type = serializers.CharField()
    status = serializers.CharField()


def webhook_health(app: HarnessApp) -> dict[str, Any]:
    endpoint = getattr(app, "webhook", None) or WebhookEndpoint(app=app)
    return {
        "enabled": endpoint.enabled,
        "has_secret": bool(endpoint.secret),
        "last_success_at": iso(endpoint.last_success_at) if endpoint.last_success_at else None,
        "last_failure_at": iso(endpoint.last_failure_at) if endpoint.last_failure_at else None,
        "failures_in_row": endpoint.failures_in_row,
    }


def org_app(org: Any, app_id: str) -> HarnessApp:
    app = (
        HarnessApp.objects.select_related("org", "harness", "webhook")
        .filter(org=org, app_id=app_id)
        .first()
    )
    if app is None:
        raise NotFound(f"No harness app {app_id!r} in this org.")
    return app


class WebhookSecretAPI(UserAPIView):
    @extend_schema(
        tags=["harnesses"],
        summary="A new webhook signing secret for the app (shown once)",
        description=(
            "Replaces the app's secret. The replaced one keeps signing, as a second "
            "signature in `webhook-signature`, until `previous_secret_expires_at` "
            "(ETHER_WEBHOOK_SECRET_OVERLAP_SECONDS, 24 h by default)."
        ),
        request=EmptyIn,
        responses={201: SecretOut, **problems(*POST_PROBLEMS)},
    )
    @idempotent
    def post(self, request: Request, app_id: str) -> Response:
        app = org_app(self.org(request), app_id)
        validated(EmptyIn, body(request))
        rotated = services.webhook_secret_rotate(app=app)
        expires = rotated.previous_secret_expires_at
        return Response(
            {
                "secret": rotated.secret,
                "previous_secret_expires_at": iso(expires) if expires else None,
            },
            status=201,
        )


class WebhookTestAPI(UserAPIView):
    @extend_schema(
        tags=["harnesses"],
        summary="Queue a webhook.test message to the app's webhook URL",
        description=(
            "Sent by the webhook sender like every delivery (signed, retried); its "
            "attempts show in the admin. 400 when the app has no URL or no secret."
        ),
        request=EmptyIn,
        responses={202: TestOut, **problems(*POST_PROBLEMS)},
    )
    @idempotent
    def post(self, request: Request, app_id: str) -> Response:
        app = org_app(self.org(request), app_id)
        validated(EmptyIn, body(request))
        delivery = services.webhook_test(app=app)
        return Response(
            {"id": delivery.public_id, "type": delivery.type, "status": delivery.status},
            status=202,
        )
