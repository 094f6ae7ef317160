"""ETHER_PUBLIC_URL (docs/contract.md §6): every absolute URL the server hands out is
built from it, never from the request's Host; without it, from the request."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.test import override_settings

from tasks.models import Harness
from tests.helpers import Caller
from tests.servers import ROOT

PUBLIC = "https://ether.example.com"
FORGED = {"HTTP_HOST": "localhost"}  # an allowed host, as a forger would pick


def urls_in(value, out=None):
    """Every absolute http(s)/ws(s) URL anywhere in a JSON body."""
    out = [] if out is None else out
    if isinstance(value, dict):
        for item in value.values():
            urls_in(item, out)
    elif isinstance(value, list):
        for item in value:
            urls_in(item, out)
    elif isinstance(value, str) and value.split(":", 1)[0] in {"http", "https", "ws", "wss"}:
        out.append(value)
    return out


@override_settings(ETHER_PUBLIC_URL=PUBLIC)
def test_forged_host_does_not_change_a_bundles_callbacks(world, task, harness):
    world.app.harness = Harness.objects.filter(is_built_in=True).first()
    world.app.save(update_fields=["harness"])
    honest = harness.get(harness.url(task.public_id, "execution")).json()
    forged = harness.claim(task.public_id, **FORGED)
    assert forged.status_code == 200, forged.content
    bundle = forged.json()["bundle"]
    assert bundle["callbacks"] == honest["callbacks"]
    assert bundle["callbacks"]["result_url"] == (
        f"{PUBLIC}/api/harness/tasks/{task.public_id}/result"
    )
    assert bundle["harness"]["self_url"].startswith(PUBLIC + "/v1/harnesses/")
    urls = urls_in({k: v for k, v in bundle.items() if k != "scope"})  # scope: the repo's
    assert len(urls) >= 6 and all(url.startswith(PUBLIC + "/") for url in urls), urls


@override_settings(ETHER_PUBLIC_URL=PUBLIC)
def test_harness_links_and_realtime_config_use_the_public_url(world):
    person = Caller(world.token)
    created = person.post(
        "/v1/harnesses",
        {"name": "linked", "display_name": "Linked", "system_prompt": "Hi."},
        **FORGED,
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["self_url"] == f"{PUBLIC}/v1/harnesses/{body['id']}"
    assert body["view_url"].startswith(PUBLIC + "/admin/")
    listed = person.get("/v1/harnesses", **FORGED).json()["data"]
    assert all(url.startswith(PUBLIC + "/") for url in urls_in(listed))
    config = Caller(None).get("/api/config", **FORGED).json()["realtime"]
    assert config["websocket_url"] == "wss://ether.example.com/api/realtime"
    assert config["sse_url_template"] == PUBLIC + "/api/tasks/{task_id}/events"


def test_without_it_urls_follow_the_request(world, task, harness):
    bundle = harness.claim(task.public_id, **FORGED).json()["bundle"]
    assert bundle["callbacks"]["heartbeat_url"] == (
        f"http://localhost/api/harness/tasks/{task.public_id}/heartbeat"
    )


@pytest.mark.parametrize(
    "value",
    [
        "ether.example.com",
        "ftp://ether.example.com",
        "https://ether.example.com/sub",
        "https://ether.example.com/?x=1",
        "https://user:pw@ether.example.com",
        "https://ether.example.com:port",
    ],
)
def test_a_public_url_that_is_not_an_origin_stops_the_server_at_start_up(value):
    env = {**os.environ, "DJANGO_DEBUG": "1", "ETHER_PUBLIC_URL": value}
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "ether_site.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "ETHER_PUBLIC_URL" in result.stderr


def test_a_trailing_slash_and_case_are_normalised():
    env = {**os.environ, "DJANGO_DEBUG": "1", "ETHER_PUBLIC_URL": "HTTPS://Ether.Example.com:8443/"}
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.conf import settings; "
            "print(settings.ETHER_PUBLIC_URL)",
        ],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "ether_site.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.strip() == "https://ether.example.com:8443", result.stderr
