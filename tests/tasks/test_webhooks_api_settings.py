"""Webhook settings through the public API: the URL (with its SSRF guard), the secret and
its rotation, the test message; and which changes write which deliveries (outbox)."""

from __future__ import annotations

import ipaddress

import pytest

from tasks.webhooks.models import WebhookEndpoint
from tasks.webhooks.targets import refusal
from tests.helpers import Caller, problem
from tests.tasks import webhooks_support
from tests.tasks.webhooks_support import PUBLIC, patch

# The shared fixtures, bound here so that pytest finds them for this module's tests.
me = webhooks_support.me

pytestmark = pytest.mark.django_db


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
