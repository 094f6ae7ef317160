"""The admin's webhook pages: each app's health, the attempts of a delivery, resend."""

from __future__ import annotations

import pytest
from django.test import Client

from tasks.webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from tasks.webhooks.sender import send_one
from tests.tasks.webhook_receiver import Receiver
from tests.tasks.webhooks_support import patch, secret

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(world):
    world.user.is_staff = world.user.is_superuser = True
    world.user.save()
    client = Client()
    client.force_login(world.user)
    return client


@pytest.fixture
def receiver():
    r = Receiver().start()
    yield r
    r.stop()


def test_health_attempts_and_resend(world, staff, receiver, settings):
    settings.ETHER_WEBHOOK_ALLOW_PRIVATE = True
    settings.ETHER_WEBHOOK_RETRY_SECONDS = (0.0,)
    me = world.person()
    patch(me, world.app.app_id, {"webhook_url": receiver.url})
    whsec = secret(me, world.app.app_id)
    receiver.fail = lambda request: 503
    task = world.task()
    send_one(sender="t")
    delivery = send_one(sender="t")
    assert delivery.status == DeliveryStatus.FAILED and delivery.attempts == 2

    listing = staff.get("/admin/tasks/harnessapp/").content.decode()
    assert "2 failure(s) in a row, no success yet" in listing
    page = staff.get(f"/admin/tasks/harnessapp/{world.app.pk}/change/").content.decode()
    assert receiver.url in page and "0 pending, 1 given up" in page
    assert whsec not in page and whsec.removeprefix("whsec_") not in page

    detail = staff.get(f"/admin/tasks/webhookdelivery/{delivery.pk}/change/").content.decode()
    assert detail.count("HTTP 503") >= 2  # each attempt listed
    assert whsec.removeprefix("whsec_") not in detail

    receiver.fail = lambda request: None
    response = staff.post(
        "/admin/tasks/webhookdelivery/",
        {"action": "resend", "_selected_action": [delivery.pk]},
    )
    assert response.status_code == 302
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PENDING and delivery.attempts == 0
    assert send_one(sender="t").status == DeliveryStatus.DELIVERED
    ids = [r.id for r in receiver.requests]
    assert ids == [delivery.public_id] * 3  # the same webhook-id on the resend
    receiver.requests[-1].verify(whsec)
    assert delivery.attempt_log.count() == 3
    endpoint = WebhookEndpoint.objects.get(app=world.app)
    assert endpoint.failures_in_row == 0 and endpoint.last_success_at
    listing = staff.get("/admin/tasks/harnessapp/").content.decode()
    assert "0 failure(s) in a row, last success" in listing
    assert WebhookDelivery.objects.filter(task=task).count() == 1


def test_resend_needs_the_change_permission(world, receiver, settings):
    from django.contrib.auth.models import Permission

    world.user.is_staff = True
    world.user.save()
    world.user.user_permissions.add(Permission.objects.get(codename="view_webhookdelivery"))
    client = Client()
    client.force_login(world.user)
    page = client.get("/admin/tasks/webhookdelivery/").content.decode()
    assert 'value="resend"' not in page
