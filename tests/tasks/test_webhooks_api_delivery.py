"""Webhook settings through the public API: the URL (with its SSRF guard), the secret and
its rotation, the test message; and which changes write which deliveries (outbox)."""

from __future__ import annotations

import json

import pytest
from django.db import transaction
from standardwebhooks import Webhook

from tasks.models import HarnessApp, Task
from tasks.services import leases_sweep, task_cancel
from tasks.webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from tasks.webhooks.sender import send_one
from tests.helpers import past_expiry, problem
from tests.tasks import webhooks_support
from tests.tasks.webhooks_support import deliveries, patch, secret

# The shared fixtures, bound here so that pytest finds them for this module's tests.
hooked = webhooks_support.hooked
me = webhooks_support.me
receiver = webhooks_support.receiver

pytestmark = pytest.mark.django_db


# --- the secret ----------------------------------------------------------------------------
def test_secret_is_shown_once_and_rotation_keeps_the_old_one_signing(world, me, hooked, receiver):
    first = hooked
    assert first.startswith("whsec_") and len(Webhook(first)._whsecret) == 32
    endpoint = WebhookEndpoint.objects.get(app=world.app)
    assert endpoint.secret == first  # stored so that it can sign (docs/webhooks.md)
    listed = me.get("/api/harness-apps").json()["data"][0]
    assert "whsec_" not in json.dumps(listed)  # never shown again
    assert listed["webhook"]["enabled"] is True

    response = me.post(f"/api/harness-apps/{world.app.app_id}/webhook/secret")
    assert response.status_code == 201
    second = response.json()["secret"]
    assert second != first and response.json()["previous_secret_expires_at"]

    me.post(f"/api/harness-apps/{world.app.app_id}/webhook/test")
    assert send_one(sender="t").status == DeliveryStatus.DELIVERED
    (got,) = receiver.requests
    assert len(got.headers["webhook-signature"].split(" ")) == 2
    assert got.verify(second)["type"] == "webhook.test"
    assert got.verify(first)["data"]["app_id"] == "builder"  # a receiver not yet switched


def test_rotation_without_overlap_drops_the_old_secret(world, me, hooked, receiver, settings):
    settings.ETHER_WEBHOOK_SECRET_OVERLAP_SECONDS = 0
    second = secret(me, world.app.app_id)
    me.post(f"/api/harness-apps/{world.app.app_id}/webhook/test")
    send_one(sender="t")
    (got,) = receiver.requests
    got.verify(second)
    with pytest.raises(Exception, match="No matching signature"):
        got.verify(hooked)


# --- the test message ------------------------------------------------------------------------
def test_test_message_needs_a_url_and_a_secret(world, me):
    path = f"/api/harness-apps/{world.app.app_id}/webhook/test"
    body = problem(me.post(path), 400, "validation_error")
    assert set(body["errors"]) == {"webhook_url", "secret"}
    secret(me, world.app.app_id)
    assert set(problem(me.post(path), 400, "validation_error")["errors"]) == {"webhook_url"}
    assert not WebhookDelivery.objects.exists()


def test_test_message_is_signed_and_recorded(world, me, hooked, receiver):
    response = me.post(f"/api/harness-apps/{world.app.app_id}/webhook/test")
    assert response.status_code == 202, response.content
    sent = response.json()
    assert sent["type"] == "webhook.test" and sent["status"] == "pending"
    assert sent["id"].startswith("msg_")

    delivery = send_one(sender="t")
    assert delivery.public_id == sent["id"] and delivery.status == DeliveryStatus.DELIVERED
    (got,) = receiver.requests
    body = got.verify(hooked)
    assert body["type"] == "webhook.test" and body["data"]["app_id"] == "builder"
    assert got.headers["webhook-id"] == sent["id"]
    assert got.headers["content-type"] == "application/json"
    (attempt,) = delivery.attempt_log.all()
    assert attempt.ok and attempt.status_code == 204 and attempt.duration_ms is not None
    assert attempt.url == receiver.url and attempt.finished_at is not None
    health = me.get("/api/harness-apps").json()["data"][0]["webhook"]
    assert health["last_success_at"] and health["failures_in_row"] == 0


# --- which changes write which deliveries ----------------------------------------------------
def test_task_lifecycle_writes_ready_answered_and_cancel_requested(world, me, hooked, receiver):
    builder = world.harness()
    task = world.task()
    (ready,) = deliveries(task=task)
    assert ready.type == "task.ready" and ready.app == world.app  # rival has no webhook
    run_id = builder.claim(task.public_id).json()["run_id"]
    builder.interrupt(task.public_id, run_id, "Which DB?")
    assert me.post(f"/api/tasks/{task.public_id}/answer", {"answer": "Postgres"}).status_code == 200
    me.post(f"/api/tasks/{task.public_id}/cancel")
    kinds = [d.type for d in deliveries(task=task)]
    assert kinds == ["task.ready", "task.answered", "task.cancel_requested"]

    while send_one(sender="t"):
        pass
    bodies = [r.verify(hooked) for r in receiver.requests]
    assert [b["type"] for b in bodies] == kinds
    base = f"http://127.0.0.1:8080/api/harness/tasks/{task.public_id}"
    ready_data = bodies[0]["data"]
    assert ready_data == {
        "task_id": task.public_id,
        "execution_url": f"{base}/execution",
        "claim_url": f"{base}/claim",
        "title": task.title,
        "status": "ready",
        "assigned_app_id": None,
    }
    assert bodies[1]["data"]["run_id"] == run_id
    assert bodies[1]["data"]["answer"] == "Postgres"
    assert bodies[2]["data"] == {
        "task_id": task.public_id,
        "execution_url": f"{base}/execution",
        "claim_url": f"{base}/claim",
        "run_id": run_id,
    }
    assert all(b["timestamp"].endswith("Z") for b in bodies)


def test_release_reopen_and_expiry_announce_ready_again(world, me, hooked):
    builder = world.harness()
    task = world.task()
    run_id = builder.claim(task.public_id).json()["run_id"]
    assert builder.step(task.public_id, run_id).status_code == 201  # no webhook
    me.post(f"/api/tasks/{task.public_id}/release")
    run_id = builder.claim(task.public_id).json()["run_id"]
    builder.result(task.public_id, run_id)  # no_changes
    me.post(f"/api/tasks/{task.public_id}/reopen")
    run_id = builder.claim(task.public_id).json()["run_id"]
    with past_expiry(run_id):
        assert leases_sweep() == 1
    assert Task.objects.get(pk=task.pk).status == "ready"
    assert [d.type for d in deliveries(task=task)] == ["task.ready"] * 4


def test_public_url_setting_builds_the_links(world, me, hooked, settings):
    settings.ETHER_PUBLIC_URL = "https://ether.example.com"
    task = world.task()
    (ready,) = deliveries(task=task)
    data = json.loads(ready.body)["data"]
    assert (
        data["claim_url"] == f"https://ether.example.com/api/harness/tasks/{task.public_id}/claim"
    )


def test_no_deliveries_without_a_secret_or_for_revoked_apps(world, me, settings):
    settings.ETHER_WEBHOOK_ALLOW_PRIVATE = True
    patch(me, world.app.app_id, {"webhook_url": "http://127.0.0.1:9/h"})
    world.task()
    assert not WebhookDelivery.objects.exists()  # a URL alone does not turn webhooks on
    secret(me, world.app.app_id)
    HarnessApp.objects.filter(pk=world.app.pk).update(revoked_at="2026-01-01T00:00:00Z")
    world.task()
    assert not WebhookDelivery.objects.exists()


def test_a_rolled_back_change_enqueues_nothing(world, me, hooked):
    task = world.task()
    builder = world.harness()
    builder.claim(task.public_id)
    before = WebhookDelivery.objects.count()

    class Boom(Exception):
        pass

    with pytest.raises(Boom), transaction.atomic():
        task_cancel(task=task, user=world.user)
        assert WebhookDelivery.objects.count() == before + 1  # written in the transaction
        raise Boom
    assert WebhookDelivery.objects.count() == before
    assert Task.objects.get(pk=task.pk).status == "in_progress"


def test_an_answer_after_the_lease_expired_announces_the_task_ready_again(world, me, hooked):
    builder = world.harness()
    task = world.task()
    run_id = builder.claim(task.public_id).json()["run_id"]
    builder.interrupt(task.public_id, run_id, "Which DB?")
    with past_expiry(run_id):
        assert leases_sweep() == 1  # a paused task keeps waiting: no task.ready yet
        assert [d.type for d in deliveries(task=task)] == ["task.ready"]
        response = me.post(f"/api/tasks/{task.public_id}/answer", {"answer": "SQLite"})
        assert response.status_code == 200
    assert Task.objects.get(pk=task.pk).status == "ready"
    kinds = [d.type for d in deliveries(task=task)]
    assert kinds == ["task.ready", "task.answered", "task.ready"]


def test_messages_and_reopen_feedback_are_sent_as_webhooks(world, me, hooked, receiver):
    builder = world.harness()
    task = world.task()
    run_id = builder.claim(task.public_id).json()["run_id"]
    sent = me.post(f"/api/tasks/{task.public_id}/messages", {"text": "Also handle HEAD"})
    assert sent.status_code in (200, 201), sent.content
    builder.result(task.public_id, run_id)  # no_changes
    reopened = me.post(f"/api/tasks/{task.public_id}/reopen", {"feedback": "Add a test too"})
    assert reopened.status_code == 200, reopened.content
    kinds = [d.type for d in deliveries(task=task)]
    assert kinds == ["task.ready", "task.message", "task.feedback", "task.ready"] or kinds == [
        "task.ready",
        "task.message",
        "task.ready",
        "task.feedback",
    ]

    while send_one(sender="t"):
        pass
    bodies = {b["type"]: b["data"] for b in (r.verify(hooked) for r in receiver.requests)}
    assert bodies["task.message"]["text"] == "Also handle HEAD"
    assert bodies["task.message"]["run_id"] == run_id
    assert bodies["task.feedback"]["text"] == "Add a test too"
    assert bodies["task.feedback"]["message_id"].startswith("note_")


def test_attempts_failures_and_the_outbox_show_in_metrics(world, me, hooked, receiver):
    from django.utils import timezone
    from prometheus_client import REGISTRY

    from tasks.webhooks.sender import outbox_gauges

    def sample(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    attempts = sample("ether_webhook_attempts_total")
    status_failures = sample("ether_webhook_failures_total", reason="status")
    world.task()  # one task.ready
    outbox_gauges(timezone.now())
    assert sample("ether_webhook_outbox_pending") == 1
    receiver.fail = lambda r: 500
    assert send_one(sender="t") is not None
    assert sample("ether_webhook_attempts_total") == attempts + 1
    assert sample("ether_webhook_failures_total", reason="status") == status_failures + 1


def test_reassigning_a_ready_task_tells_the_new_app(world, me, hooked):
    task = world.task()
    assert [d.type for d in deliveries(task=task)] == ["task.ready"]
    me.client.patch(
        f"/api/tasks/{task.public_id}",
        json.dumps({"assigned_app_id": world.app.app_id}),
        content_type="application/json",
        **me.headers,
    )
    ready = deliveries(task=task, type="task.ready")
    assert len(ready) == 2 and ready[1].app == world.app
    assert json.loads(ready[1].body)["data"]["assigned_app_id"] == world.app.app_id
