"""``/v1/harnesses``: harness definitions, their inheritance, and the claim bundle."""

from __future__ import annotations

import base64

import pytest

from tasks.harnesses.keys import harness_app_revoke
from tasks.models import Harness, HarnessApp, Run
from tests.helpers import problem
from tests.tasks import harnesses_support
from tests.tasks.harnesses_support import create, created, delete, get, patch

# The shared fixtures, bound here so that pytest finds them for this module's tests.
chain = harnesses_support.chain
me = harnesses_support.me

B64 = base64.b64encode(b"\x00\x01binary").decode()

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"name": "Upper"}, "name"),
        ({"name": "double--hyphen"}, "name"),
        ({"name": "-lead"}, "name"),
        ({"name": "a" * 65}, "name"),
        ({"name": "ünïcode"}, "name"),
        ({"name": "ok", "mcpServers": {"x": {"url": "ftp://x.example.com"}}}, "mcpServers.x.url"),
        ({"name": "ok", "mcpServers": {"x": {"url": "https://"}}}, "mcpServers.x.url"),
        ({"name": "ok", "mcpServers": {"x": {"url": "https://u:p@x.io"}}}, "mcpServers.x.url"),
        (
            {"name": "ok", "mcpServers": {"x": {"url": "https://x.io", "type": "stdio"}}},
            "mcpServers.x.type",
        ),
        (
            {"name": "ok", "mcpServers": {"x": {"url": "https://x.io", "auth_mode": "o_auth"}}},
            "mcpServers.x.oauth_provider_id",
        ),
        ({"name": "ok", "mcpServers": {"bad key": {"url": "https://x.io"}}}, "mcpServers"),
        (
            {"name": "ok", "mcpServers": {"x": {"url": "https://x.io", "command": "sh"}}},
            "mcpServers.x.command",
        ),
        (
            {
                "name": "ok",
                "initial_files": [{"path": "/a", "content": "!!", "encoding": "base64"}],
            },
            "initial_files.0.content",
        ),
        (
            {"name": "ok", "initial_files": [{"path": "a.txt", "content": ""}]},
            "initial_files.0.path",
        ),
        (
            {"name": "ok", "initial_files": [{"path": "/src/../../etc/passwd", "content": ""}]},
            "initial_files.0.path",
        ),
        (
            {"name": "ok", "initial_files": [{"path": "/workspace", "content": ""}]},
            "initial_files.0.path",
        ),
        (
            {"name": "ok", "initial_files": [{"path": "/a", "content": "", "encoding": "gzip"}]},
            "initial_files.0.encoding",
        ),
        (
            {
                "name": "ok",
                "initial_files": [
                    {"path": "/a", "content": "1"},
                    {"path": "/workspace/a", "content": "2"},
                ],
            },
            "initial_files",
        ),
        ({"name": "ok", "capabilities": [{"id": "fs"}]}, "capabilities.0.id"),
        ({"name": "ok", "capabilities": [{"ref": "fs", "config": [1]}]}, "capabilities.0.config"),
        ({"name": "ok", "capabilities": ["fs"]}, "capabilities.0"),
        ({"name": "ok", "capabilities": [{"ref": "fs"}, {"ref": "fs"}]}, "capabilities"),
        ({"name": "ok", "capabilities": [{"ref": "Has Space"}]}, "capabilities.0.ref"),
        ({"name": "ok", "network_access": {"allowed": ["not a host"]}}, "network_access.allowed"),
        ({"name": "ok", "network_access": {"denied": []}}, "network_access.denied"),
        ({"name": "ok", "tags": "one"}, "tags"),
        ({"name": "ok", "favourite": 1}, "favourite"),
        (
            {"name": "ok", "mcpServers": {"x": {"url": "https://x.io", "tool_discovery": "yes"}}},
            "mcpServers.x.tool_discovery",
        ),
    ],
)
def test_invalid_definitions_are_400_with_the_field_named(me, fields, field):
    body = problem(create(me, **fields), 400, "validation_error")
    assert field in body["errors"], body["errors"]
    assert Harness.objects.filter(org__isnull=False).count() == 0


def test_good_shapes_are_kept_as_sent(me):
    body = created(
        me,
        name="good",
        initial_files=[{"path": "/bin/tool", "content": B64, "encoding": "base64"}],
        mcpServers={
            "gh": {
                "url": "https://mcp.github.com",
                "auth_mode": "o_auth",
                "oauth_provider_id": "github",
                "headers": {"X-Team": "a"},
            }
        },
        network_access={"allowed": ["https://api.acme.com/v1/", "10.1.2.3"], "blocked": []},
    )
    assert body["initial_files"][0]["encoding"] == "base64"
    assert body["mcpServers"]["gh"] == {
        "type": "http",
        "url": "https://mcp.github.com",
        "auth_mode": "o_auth",
        "headers": {"X-Team": "a"},
        "oauth_provider_id": "github",
        "tool_discovery": True,
    }


def test_starter_files_are_capped_in_number_and_total_size(me, settings):
    many = [{"path": f"/f{n}", "content": "x"} for n in range(101)]
    body = problem(create(me, name="many", initial_files=many), 400, "validation_error")
    assert "At most 100" in body["errors"]["initial_files"][0]
    settings.ETHER_MAX_BODY_BYTES = settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 8 * 1024 * 1024
    big = [{"path": f"/big{n}", "content": "x" * (2 * 1024 * 1024)} for n in range(3)]
    body = problem(create(me, name="big", initial_files=big), 400, "validation_error")
    assert "5 MiB" in body["errors"]["initial_files"][0]
    assert not Harness.objects.filter(org__isnull=False).exists()


# --- lists ----------------------------------------------------------------------------------------
def test_list_pages_searches_and_counts(world, me, chain):
    page = me.get("/v1/harnesses?limit=2").json()
    assert len(page["data"]) == 2 and page["next_cursor"]
    rest = me.get(f"/v1/harnesses?limit=2&cursor={page['next_cursor']}").json()
    names = [h["name"] for h in page["data"] + rest["data"]]
    assert sorted(names) == ["base", "generic", "leaf", "team"]
    assert [h["name"] for h in me.get("/v1/harnesses?search=team-a").json()["data"]] == ["leaf"]
    assert [h["name"] for h in me.get("/v1/harnesses?search=TEAM").json()["data"]] == [
        "team",
        "leaf",
    ]
    problem(me.get("/v1/harnesses?include_archived=maybe"), 400, "validation_error")
    problem(me.get("/v1/harnesses?limit=0"), 400, "validation_error")


# --- apps, runs and the bundle -------------------------------------------------------------------
def test_the_claim_bundle_carries_the_resolved_definition_and_runs_record_it(
    world, me, chain, task
):
    response = patch(me, f"/api/harness-apps/{world.app.app_id}", {"harness": "leaf"})
    assert response.status_code == 200
    assert response.json()["harness_name"] == "leaf"
    assert HarnessApp.objects.get(pk=world.app.pk).harness.name == "leaf"

    claim = world.harness().claim(task.public_id)
    assert claim.status_code == 200, claim.content
    bundled = claim.json()["bundle"]["harness"]
    resolved = get(me, "leaf", resolved="true").json()
    assert bundled["system_prompt"] == "Be careful.\n\nWrite tests.\n\nSmall PRs."
    assert bundled["layers"] == resolved["layers"]
    assert bundled["capabilities"] == resolved["capabilities"]
    assert bundled["mcpServers"] == resolved["mcpServers"]
    assert bundled["network_access"] == resolved["network_access"]
    assert bundled["initial_files"] == resolved["initial_files"]
    run = Run.objects.get(task=task)
    assert run.harness.name == "leaf"

    counts = get(me, "leaf").json()
    assert (counts["app_count"], counts["session_count"]) == (1, 1)
    assert get(me, "team").json()["session_count"] == 0
    # The outsider's view of built-ins counts only its own org's apps and runs.
    patch(me, f"/api/harness-apps/{world.rival.app_id}", {"harness": "generic"})
    assert get(me, "generic").json()["app_count"] == 1
    assert get(world.outsider(), "generic").json()["app_count"] == 0


def test_an_app_without_a_definition_claims_with_null(world, task):
    claim = world.harness().claim(task.public_id)
    assert claim.json()["bundle"]["harness"] is None
    assert Run.objects.get(task=task).harness is None


def test_attaching_checks_the_definition(world, me):
    created(me, name="old")
    delete(me, "/v1/harnesses/old")
    path = f"/api/harness-apps/{world.app.app_id}"
    problem(patch(me, path, {"harness": "old"}), 400, "validation_error")
    problem(patch(me, path, {"harness": "nope"}), 404, "not_found")
    # globex has a "builder" app of its own, but no "rival".
    rival = f"/api/harness-apps/{world.rival.app_id}"
    problem(patch(world.outsider(), rival, {"harness": "generic"}), 404, "not_found")
    problem(patch(me, path, {"harness": 3}), 400, "validation_error")
    assert HarnessApp.objects.get(pk=world.app.pk).harness is None
    assert patch(me, path, {"harness": None}).json()["harness_id"] is None
    apps = me.get("/api/harness-apps").json()
    assert [a["app_id"] for a in apps["data"]] == ["builder", "rival"]
    assert apps["next_cursor"] is None


def test_only_an_active_definition_can_be_the_default(me):
    created(me, name="old")
    delete(me, "/v1/harnesses/old")
    problem(patch(me, "/v1/harnesses/old", {"is_default": True}), 400, "validation_error")
    assert get(me, "default").json()["name"] == "generic"
    back = patch(me, "/v1/harnesses/old", {"status": "active", "is_default": True})
    assert back.status_code == 200 and back.json()["is_default"] is True
    # Archiving the default hands the role back to the built-in.
    delete(me, "/v1/harnesses/old")
    assert get(me, "default").json()["name"] == "generic"
    assert not Harness.objects.filter(is_default=True).exists()


def test_harness_apps_list_shows_each_apps_definition_and_revocation(world, me, chain):
    patch(me, f"/api/harness-apps/{world.app.app_id}", {"harness": "leaf"})
    harness_app_revoke(org=world.org, app_id=world.rival.app_id)
    rows = {a["app_id"]: a for a in me.get("/api/harness-apps").json()["data"]}
    assert rows[world.app.app_id] == {
        "app_id": world.app.app_id,
        "name": world.app.name,
        "harness_id": chain[2]["id"],
        "harness_name": "leaf",
        "revoked": False,
        "webhook_url": None,
        "webhook": {
            "enabled": False,
            "has_secret": False,
            "last_success_at": None,
            "last_failure_at": None,
            "failures_in_row": 0,
        },
    }
    assert rows[world.rival.app_id]["harness_id"] is None
    assert rows[world.rival.app_id]["harness_name"] is None
    assert rows[world.rival.app_id]["revoked"] is True
