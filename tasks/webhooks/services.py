"""Writes people make to webhooks: the URL, the secret, a test message, a resend."""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from api.errors import ValidationFailed
from api.retention import retention_cutoff
from tasks.models import HarnessApp
from tasks.webhooks import outbox
from tasks.webhooks.models import DeliveryStatus, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from tasks.webhooks.targets import TargetRefused, check

SECRET_BYTES = 32  # the Standard Webhooks spec asks for 24 to 64 random bytes


def _endpoint(app: HarnessApp) -> WebhookEndpoint:
    """The app's endpoint row, made on first use and locked for the transaction."""
    WebhookEndpoint.objects.get_or_create(app=app)
    return WebhookEndpoint.objects.select_for_update().get(app=app)


def webhook_url_set(*, app: HarnessApp, url: str | None) -> WebhookEndpoint:
    """Sets (or, with None or "", removes) the app's webhook URL after the SSRF check.

    Deliveries still pending go to the new URL; with no URL they are given up when their
    turn comes."""
    url = (url or "").strip()
    if url:
        try:
            check(url)
        except TargetRefused as exc:
            raise ValidationFailed({"webhook_url": [str(exc)]}) from None
    with transaction.atomic():
        endpoint = _endpoint(app)
        endpoint.url = url
        endpoint.updated_at = timezone.now()
        endpoint.save(update_fields=["url", "updated_at"])
    return endpoint


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


@dataclass(frozen=True)
class Rotated:
    secret: str
    previous_secret_expires_at: datetime | None


def webhook_secret_rotate(*, app: HarnessApp) -> Rotated:
    """A new signing secret, returned once. The one it replaces keeps signing, as a second
    signature, for ``ETHER_WEBHOOK_SECRET_OVERLAP_SECONDS``, so a receiver can switch
    without losing a message; a secret older than that is dropped at once."""
    now = timezone.now()
    with transaction.atomic():
        endpoint = _endpoint(app)
        overlap = settings.ETHER_WEBHOOK_SECRET_OVERLAP_SECONDS
        if endpoint.secret and overlap > 0:
            endpoint.previous_secret = endpoint.secret
            endpoint.previous_secret_until = now + timedelta(seconds=overlap)
        else:
            endpoint.previous_secret = ""
            endpoint.previous_secret_until = None
        endpoint.secret = new_secret()
        endpoint.updated_at = now
        endpoint.save()
    return Rotated(endpoint.secret, endpoint.previous_secret_until)


def webhook_test(*, app: HarnessApp) -> WebhookDelivery:
    """Queues a ``webhook.test`` to the app (sent by the sender like any other)."""
    endpoint = WebhookEndpoint.objects.filter(app=app).first()
    missing = []
    if endpoint is None or not endpoint.url:
        missing.append("webhook_url")
    if endpoint is None or not endpoint.secret:
        missing.append("secret")
    if missing:
        raise ValidationFailed(
            {name: ["Set it first: a test needs a URL and a secret."] for name in missing}
        )
    with transaction.atomic():
        app = HarnessApp.objects.select_related("webhook").get(pk=app.pk)
        if app.revoked_at is not None:
            raise ValidationFailed({"app_id": ["This app's key is revoked: it gets no webhooks."]})
        (delivery,) = outbox.webhook_enqueue(
            apps=[app],
            kind=outbox.TEST,
            task=None,
            data={"app_id": app.app_id, "message": "A test from Ether: your webhook works."},
        )
        return delivery


def webhook_resend(*, delivery: WebhookDelivery) -> WebhookDelivery:
    """Puts a delivered or given-up delivery back in the queue, due now, with the same
    ``webhook-id`` and body; its earlier attempts stay in its log."""
    WebhookDelivery.objects.filter(pk=delivery.pk).exclude(status=DeliveryStatus.PENDING).update(
        status=DeliveryStatus.PENDING,
        next_attempt_at=timezone.now(),
        claimed_until=None,
        claimed_by="",
        attempts=0,
    )
    delivery.refresh_from_db()
    return delivery


def webhook_attempts_past_retention(now: datetime) -> QuerySet[WebhookAttempt]:
    """Attempts older than ``ETHER_RETENTION_DAYS`` (retention, ``api.retention``): the
    admin's history of a delivery; the delivery row itself is kept."""
    return WebhookAttempt.objects.filter(started_at__lt=retention_cutoff(now))
