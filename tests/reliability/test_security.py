"""Deployment security: production settings pass Django's deploy check, every HTML page
has a Content-Security-Policy, session writes need CSRF, and rate limits answer 429."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from django.test import Client

from accounts.models import AccessToken
from api import ratelimit
from tasks.models import Run, Task
from tests.helpers import problem, room_in_rate_window, stored
from tests.servers import ROOT

PRODUCTION_ENV = {
    "DJANGO_SECRET_KEY": "",  # filled per test: a fresh 50-char key
    "DJANGO_ALLOWED_HOSTS": "ether.example.com",
    "DJANGO_CSRF_TRUSTED_ORIGINS": "https://ether.example.com",
}


def manage(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    child = {k: v for k, v in os.environ.items() if k != "DJANGO_DEBUG"}
    child.update(PRODUCTION_ENV, DJANGO_SECRET_KEY=secrets.token_urlsafe(50))
    child.update(ETHER_DATA_DIR=str(tmp_path), DATABASE_URL="", REDIS_URL="", **env)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=child,
        capture_output=True,
        text=True,
        timeout=120,
    )


# --- manage.py check --deploy ---------------------------------------------------------------


def test_production_settings_pass_the_deploy_check(tmp_path):
    done = manage(tmp_path, "check", "--deploy", "--fail-level", "WARNING")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no issues" in done.stdout


def test_deploy_check_fails_when_an_operator_turns_https_off(tmp_path):
    # The check is real: the same run without the redirect and HSTS is refused.
    done = manage(
        tmp_path,
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        ETHER_SSL_REDIRECT="0",
        ETHER_HSTS_SECONDS="0",
    )
    assert done.returncode != 0
    assert "security.W004" in done.stderr + done.stdout
    assert "security.W008" in done.stderr + done.stdout


def test_production_settings_read_the_tls_proxy_switch(tmp_path):
    script = (
        "from django.conf import settings as s;"
        "print(s.SECURE_SSL_REDIRECT, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE,"
        " s.SECURE_HSTS_SECONDS, s.SECURE_PROXY_SSL_HEADER)"
    )
    behind = manage(tmp_path, "shell", "--no-imports", "-c", script, ETHER_BEHIND_TLS_PROXY="1")
    assert behind.returncode == 0, behind.stderr
    assert behind.stdout.splitlines()[-1].split() == [
        "True",
        "True",
        "True",
        "31536000",
        "('HTTP_X_FORWARDED_PROTO',",
        "'https')",
    ]
    direct = manage(tmp_path, "shell", "--no-imports", "-c", script)
    assert direct.stdout.splitlines()[-1].split()[-1] == "None"


def test_plain_http_is_redirected_and_a_tls_proxy_request_gets_hsts(db, settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 3600
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    response = Client().get("/api/config")
    assert response.status_code == 301
    assert response["Location"] == "https://testserver/api/config"
    proxied = Client().get("/api/config", HTTP_X_FORWARDED_PROTO="https")
    assert proxied.status_code == 200
    assert proxied["Strict-Transport-Security"].startswith("max-age=3600")
    # The callbacks a harness is given are absolute URLs: behind the proxy they say https.
    assert proxied.json()["realtime"]["websocket_url"].startswith("wss://")


# --- Content-Security-Policy ----------------------------------------------------------------


def test_every_html_page_has_a_content_security_policy_without_inline_scripts(world, task):
    signed_in = Client()
    signed_in.force_login(world.user)
    pages = [(Client(), "/admin/login/"), (Client(), "/api/docs/"), (Client(), "/login/")]
    pages += [
        (signed_in, path)
        for path in [
            "/tasks/",
            f"/tasks/{task.public_id}",
            f"/tasks/{task.public_id}/replay",
            f"/tasks/{task.public_id}/compaction",
        ]
    ]
    for client, path in pages:
        response = client.get(path)
        assert response.status_code == 200, (path, response.status_code)
        assert response["Content-Type"].startswith("text/html"), path
        policy = response["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy.split("style")[0]
        assert "frame-ancestors 'none'" in policy and "object-src 'none'" in policy
        page = response.content.decode()
        # Every <script> names a file: an inline one would be blocked by the policy.
        for chunk in page.split("<script")[1:]:
            head, _, rest = chunk.partition(">")
            inline = rest.split("</script>")[0].strip()
            assert "src=" in head or "application/json" in head or not inline, (path, chunk[:200])


def test_admin_pages_signed_in_carry_the_policy(world, django_user_model):
    admin = django_user_model.objects.create_superuser("root", "root@example.com", "pw-long-1")
    client = Client()
    client.force_login(admin)
    for path in ["/admin/", "/admin/tasks/task/", "/admin/corpus/document/"]:
        response = client.get(path)
        assert response.status_code == 200, path
        assert "script-src 'self'" in response["Content-Security-Policy"]


def test_api_docs_start_up_script_is_a_file_the_policy_allows(db):
    page = Client().get("/api/docs/").content.decode()
    assert '<script src="/api/docs/?script="></script>' in page
    script = Client().get("/api/docs/?script=")
    assert script.status_code == 200
    assert "javascript" in script["Content-Type"]
    assert "SwaggerUIBundle" in script.content.decode()


def test_json_answers_carry_no_page_policy(world):
    response = world.person().get("/api/tasks")
    assert response.status_code == 200
    assert not response.has_header("Content-Security-Policy")


# --- CSRF ---------------------------------------------------------------------------------


def test_session_write_without_csrf_token_is_403_problem_and_stores_nothing(world, task):
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.user)
    before = stored()
    writes = [
        ("/api/tasks/{}/cancel", {}),
        ("/api/realtime/tickets", {}),
        ("/api/tasks/{}/answer", {"answer": "yes"}),
    ]
    for path, data in writes:
        response = client.post(path.format(task.public_id), data, content_type="application/json")
        body = problem(response, 403, "forbidden")
        assert "CSRF" in body["detail"]
    assert stored() == before
    assert Task.objects.get(pk=task.pk).status == "ready"


def test_session_write_with_csrf_token_is_accepted(world, task):
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.user)
    client.get("/tasks/")  # sets the csrftoken cookie, as the page load does
    token = client.cookies["csrftoken"].value
    response = client.post(
        f"/api/tasks/{task.public_id}/cancel",
        "{}",
        content_type="application/json",
        HTTP_X_CSRFTOKEN=token,
    )
    assert response.status_code == 200, response.content
    assert Task.objects.get(pk=task.pk).status == "cancelled"


def test_bearer_token_writes_need_no_csrf_token(world, task):
    client = Client(enforce_csrf_checks=True)
    response = client.post(
        f"/api/tasks/{task.public_id}/cancel",
        "{}",
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {world.token}",
    )
    assert response.status_code == 200


# --- Rate limits --------------------------------------------------------------------------


@pytest.fixture
def low_limits(settings):
    room_in_rate_window(60, need=10)
    settings.ETHER_RATE_LIMITS = {"harness": (5, 60), "claim": (2, 60), "ticket": (2, 60)}


def throttled(response) -> dict:
    body = problem(response, 429, "throttled")
    assert 1 <= int(response["Retry-After"]) <= 61
    return body


def test_claims_past_the_limit_are_429_with_retry_after_and_store_nothing(
    world, task, harness, low_limits
):
    assert harness.claim(task.public_id).status_code == 200
    assert harness.claim(task.public_id).status_code == 200
    before = stored()
    throttled(harness.claim(task.public_id))
    assert stored() == before
    assert Run.objects.get().lease_epoch == 2
    # The other routes still answer, up to the harness limit (5: two claims, then these).
    run_id = Run.objects.get().public_id
    assert harness.heartbeat(task.public_id, run_id).status_code == 200
    assert harness.step(task.public_id, run_id).status_code == 201
    before = stored()
    throttled(harness.step(task.public_id, run_id))
    throttled(harness.get(harness.url(task.public_id, "execution")))
    assert stored() == before


def test_a_window_counter_counts_each_of_many_concurrent_hits_once_and_expires():
    """The counter under rate limits (``ratelimit._counted``), on the settings' cache: Redis
    in the Postgres + Redis suite (one MULTI of SET NX EX and INCR), the process's memory
    otherwise. 200 hits from 16 threads at once, on a counter none of them made: every
    hit gets its own count, the counter reads 200 through the cache API, and on Redis it
    expires with its window."""
    key = f"test:{uuid.uuid4().hex}"
    with ThreadPoolExecutor(16) as pool:
        counts = list(pool.map(lambda _: ratelimit._counted(key, timeout=30), range(200)))
    assert sorted(counts) == list(range(1, 201))
    cache = caches["ratelimit"]
    assert cache.get(key) == 200
    if isinstance(cache, RedisCache):
        name = cache.make_and_validate_key(key)
        assert 0 < cache._cache.get_client(name).ttl(name) <= 30
    cache.delete(key)


def test_each_app_has_its_own_count(world, task, low_limits):
    builder, rival = world.harness(), world.rival_harness()
    other = world.task()
    assert builder.claim(task.public_id).status_code == 200
    assert builder.claim(other.public_id).status_code == 200
    throttled(builder.claim(task.public_id))
    assert rival.claim(task.public_id).status_code == 409  # counted apart: lease_held


def test_throttled_idempotent_retry_runs_once_the_window_allows(world, task, harness, settings):
    room_in_rate_window(60, need=10)
    settings.ETHER_RATE_LIMITS = {"harness": None, "claim": (1, 60), "ticket": None}
    other = world.task()
    assert harness.claim(other.public_id).status_code == 200
    throttled(harness.claim(task.public_id, HTTP_IDEMPOTENCY_KEY="k1"))
    assert not Run.objects.filter(task=task).exists()
    settings.ETHER_RATE_LIMITS = {"harness": None, "claim": None, "ticket": None}
    # The refusal was not remembered under the key: the retry really claims.
    retry = harness.claim(task.public_id, HTTP_IDEMPOTENCY_KEY="k1")
    assert retry.status_code == 200 and not retry.has_header("Idempotent-Replayed")


def test_realtime_tickets_past_the_limit_are_429(world, low_limits):
    person = world.person()
    assert person.post("/api/realtime/tickets").status_code == 201
    assert person.post("/api/realtime/tickets").status_code == 201
    throttled(person.post("/api/realtime/tickets"))
    assert world.outsider().post("/api/realtime/tickets").status_code == 201
    from tasks.models import RealtimeTicket

    assert RealtimeTicket.objects.filter(user=world.user).count() == 2


def test_user_routes_other_than_tickets_are_not_limited(world, task, low_limits):
    person = world.person()
    for _ in range(8):
        assert person.get(f"/api/tasks/{task.public_id}").status_code == 200
    assert AccessToken.objects.filter(user=world.user).count() == 1


def test_rate_limit_settings_are_validated(tmp_path):
    done = manage(tmp_path, "check", ETHER_RATE_CLAIM="lots")
    assert done.returncode != 0
    assert "ETHER_RATE_CLAIM='lots' is not a rate" in done.stderr
