"""Webhook settings through the public API: the URL (with its SSRF guard), the secret and
its rotation, the test message; and which changes write which deliveries (outbox)."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import transaction
from standardwebhooks import Webhook

from tasks.models import HarnessApp, Task
from tasks.services import leases_sweep, task_cancel
from tasks.webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from tasks.webhooks.sender import send_one
from tasks.webhooks.targets import refusal
from tests.helpers import Caller, World, past_expiry, problem
from tests.tasks.webhook_receiver import Receiver

pytestmark = pytest.mark.django_db

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


# --- the URL ------------------------------------------------------------------------------
def test_patch_sets_a_public_webhook_url(world, me):
    response = patch(me, world.app.app_id, {"webhook_url": PUBLIC})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["webhook_url"] == PUBLIC
    assert body["webhook"] == {
        "enabled": False,  # no secret yet
        "has_secret": False,
        "last_success_at": None,
        "last_failure_at": None,
        "failures_in_row": 0,
    }
    assert body["harness_id"] is None  # untouched by a PATCH that does not name it
    assert WebhookEndpoint.objects.get(app=world.app).url == PUBLIC
    listed = me.get("/api/harness-apps").json()["data"]
    assert {a["app_id"]: a["webhook_url"] for a in listed} == {
        "builder": PUBLIC,
        "rival": None,
    }


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/hook",
        "http://127.1.2.3/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://172.16.5.4/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:8000/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://[fe80::1]/hook",
        "http://0.0.0.0/hook",
        "http://100.64.0.1/hook",
        "http://224.0.0.1/hook",
        "http://localhost:8000/hook",
        "http://2130706433/hook",  # 127.0.0.1 as one number
    ],
)
def test_private_and_loopback_targets_are_refused(world, me, url, settings):
    settings.ETHER_WEBHOOK_ALLOW_PRIVATE = False
    patch(me, world.app.app_id, {"webhook_url": PUBLIC})
    body = problem(patch(me, world.app.app_id, {"webhook_url": url}), 400, "validation_error")
    assert "public addresses only" in body["errors"]["webhook_url"][0]
    assert WebhookEndpoint.objects.get(app=world.app).url == PUBLIC  # unchanged


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://93.184.215.14/x", "Only http and https"),
        ("file:///etc/passwd", "Only http and https"),
        ("javascript:alert(1)", "Only http and https"),
        ("https://user:pw@93.184.215.14/", "No credentials"),
        ("https:///nohost", "no host"),
        ("https://93.184.215.14:99999/", "Not a URL"),
        ("https://93.184.215.14/a b", "whitespace"),
    ],
)
def test_malformed_urls_are_refused(world, me, url, message):
    body = problem(patch(me, world.app.app_id, {"webhook_url": url}), 400, "validation_error")
    assert message in body["errors"]["webhook_url"][0]
    assert not WebhookEndpoint.objects.filter(app=world.app).exclude(url="").exists()


def test_wrong_types_are_400_and_null_removes_the_url(world, me):
    problem(patch(me, world.app.app_id, {"webhook_url": 5}), 400, "validation_error")
    problem(patch(me, world.app.app_id, {"webhook_url": "x" * 2001}), 400, "validation_error")
    problem(patch(me, world.app.app_id, {"nope": 1}), 400, "validation_error")
    patch(me, world.app.app_id, {"webhook_url": PUBLIC})
    response = patch(me, world.app.app_id, {"webhook_url": None})
    assert response.status_code == 200
    assert response.json()["webhook_url"] is None
    assert WebhookEndpoint.objects.get(app=world.app).url == ""


def test_private_targets_are_allowed_with_the_setting(world, me, settings):
    settings.ETHER_WEBHOOK_ALLOW_PRIVATE = True
    response = patch(me, world.app.app_id, {"webhook_url": "http://localhost:9/h"})
    assert response.status_code == 200, response.content


def test_a_refused_url_leaves_the_harness_unchanged_too(world, me):
    body = {"harness": "generic", "webhook_url": "http://10.0.0.1/"}
    problem(patch(me, world.app.app_id, body), 400, "validation_error")
    world.app.refresh_from_db()
    assert world.app.harness_id is None


def test_schema_describes_the_webhook_routes(db):
    import yaml

    schema = yaml.safe_load(Caller(None).get("/api/schema/").content)
    paths = schema["paths"]
    patch_op = paths["/api/harness-apps/{app_id}"]["patch"]
    ref = patch_op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert "webhook_url" in schema["components"]["schemas"][ref.rsplit("/", 1)[-1]]["properties"]
    secret_op = paths["/api/harness-apps/{app_id}/webhook/secret"]["post"]
    assert {"201", "404"} <= set(secret_op["responses"])
    test_op = paths["/api/harness-apps/{app_id}/webhook/test"]["post"]
    assert {"202", "400", "404"} <= set(test_op["responses"])


def test_embedded_ipv4_addresses_are_judged_by_what_they_wrap():
    assert refusal(ipaddress.ip_address("::ffff:10.0.0.1"))
    assert refusal(ipaddress.ip_address("2002:7f00:1::"))  # 6to4 of 127.0.0.1
    assert refusal(ipaddress.ip_address("93.184.215.14")) is None
    assert refusal(ipaddress.ip_address("2606:2800:220:1::1")) is None


def test_webhook_routes_answer_401_404_and_405(world, me):
    anonymous = Caller(None)
    for path in ("webhook/secret", "webhook/test"):
        url = f"/api/harness-apps/{world.app.app_id}/{path}"
        problem(anonymous.post(url), 401, "not_authenticated")
        # globex has no app "rival"; its own "builder" is not acme's.
        rival_url = f"/api/harness-apps/rival/{path}"
        problem(world.outsider().post(rival_url), 404, "not_found")
        problem(me.post(f"/api/harness-apps/nobody/{path}"), 404, "not_found")
        problem(me.get(url), 405, "method_not_allowed")
        problem(me.post(url, {"x": 1}), 400, "validation_error")
    problem(patch(anonymous, world.app.app_id, {"webhook_url": PUBLIC}), 401, "not_authenticated")
    outsider = world.outsider()
    problem(patch(outsider, "rival", {"webhook_url": PUBLIC}), 404, "not_found")
    assert not WebhookEndpoint.objects.filter(app__org=world.org).exists()
    # A harness key is not a person's credential: it cannot mint its own secret.
    key_call = world.harness().post(f"/api/harness-apps/{world.app.app_id}/webhook/secret")
    assert key_call.status_code in (401, 403)
    assert not WebhookEndpoint.objects.filter(app__org=world.org).exists()


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
