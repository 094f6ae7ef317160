"""Helpers and fixtures shared by the webhook API tests (test_webhooks_api_*.py) and the admin's."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tasks.webhooks.models import WebhookDelivery
from tests.helpers import Caller, World
from tests.tasks.webhook_receiver import Receiver

PUBLIC = "https://93.184.215.14/hooks"  # an address literal: no resolver, no connection


def patch(caller: Caller, app_id: str, data: Any) -> Any:
    return caller.client.patch(
        f"/api/harness-apps/{app_id}",
        json.dumps(data),
        content_type="application/json",
        **caller.headers,
    )


def secret(caller: Caller, app_id: str) -> str:
    response = caller.post(f"/api/harness-apps/{app_id}/webhook/secret")
    assert response.status_code == 201, response.content
    return response.json()["secret"]


@pytest.fixture
def me(world: World) -> Caller:
    return world.person()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


@pytest.fixture
def hooked(world: World, me: Caller, receiver: Receiver, settings: Any) -> str:
    """``builder`` sends to the local receiver (private targets allowed); its secret."""
    settings.ETHER_WEBHOOK_ALLOW_PRIVATE = True
    assert patch(me, world.app.app_id, {"webhook_url": receiver.url}).status_code == 200
    return secret(me, world.app.app_id)


def deliveries(**filters: Any) -> list[WebhookDelivery]:
    return list(WebhookDelivery.objects.filter(**filters).order_by("pk"))
