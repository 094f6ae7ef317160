"""Verifying Ether's webhooks (Standard Webhooks: ``webhook-id``, ``webhook-timestamp``,
``webhook-signature``) with the specification's own library, ``standardwebhooks``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

__all__ = ["WebhookVerificationError", "verify_webhook"]


def verify_webhook(secret: str, body: bytes, headers: Mapping[str, str]) -> dict[str, Any]:
    """The delivery's JSON (``{"type", "timestamp", "data"}``) if ``body`` is signed with
    ``secret`` (``whsec_…``) and its timestamp is within five minutes; otherwise raises
    ``WebhookVerificationError``. Pass the raw body bytes exactly as received."""
    payload = Webhook(secret).verify(body, dict(headers))
    if not isinstance(payload, dict) or "type" not in payload:
        raise WebhookVerificationError("Not an Ether webhook body")
    return payload
