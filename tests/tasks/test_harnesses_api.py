"""``/v1/harnesses``: harness definitions, their inheritance, and the claim bundle."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from tasks.harnesses.keys import harness_app_revoke
from tasks.models import Harness, HarnessApp, HarnessStatus, Run
from tests.helpers import Caller, problem

pytestmark = pytest.mark.django_db


def create(caller: Caller, **fields: Any) -> Any:
    body = {"system_prompt": "", **fields}
    return caller.post("/v1/harnesses", body)


def created(caller: Caller, **fields: Any) -> dict[str, Any]:
    response = create(caller, **fields)
    assert response.status_code == 201, response.content
    return response.json()


def patch(caller: Caller, path: str, data: Any) -> Any:
    return caller.client.patch(
        path, json.dumps(data), content_type="application/json", **caller.headers
    )


def delete(caller: Caller, path: str) -> Any:
    return caller.client.delete(path, **caller.headers)


def get(caller: Caller, ref: str, **query: str) -> Any:
    suffix = "?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else ""
    return caller.get(f"/v1/harnesses/{ref}{suffix}")


@pytest.fixture
def me(world) -> Caller:
    return world.person()


@pytest.fixture
def chain(me) -> tuple[dict, dict, dict]:
    """Three levels: base → team → leaf, each setting every merged field."""
    base = created(
        me,
        name="base",
        system_prompt="Be careful.",
        capabilities=[{"ref": "fs", "config": {"ro": True}}, {"ref": "git", "config": {}}],
        mcpServers={
            "docs": {"url": "https://docs.example.com/mcp"},
            "jira": {"url": "https://jira.example.com/mcp", "auth_mode": "api_key"},
        },
        network_access={
            "allowed": ["*.example.com", "pypi.org"],
            "blocked": ["169.254.169.254"],
        },
        initial_files=[
            {"path": "/workspace/README.md", "content": "base readme"},
            {"path": "/setup.sh", "content": "echo base", "is_readonly": True},
        ],
        default_model_id="model_base",
    )
    team = created(
        me,
        name="team",
        parent_harness_id=base["id"],
        system_prompt="Write tests.",
        capabilities=[{"ref": "git", "config": {"sign": True}}, {"ref": "web"}],
        mcpServers={"docs": {"url": "https://team-docs.example.com/mcp"}},
        network_access={"allowed": ["api.example.com", "github.com"], "blocked": ["10.0.0.0/8"]},
        initial_files=[{"path": "/README.md", "content": "team readme"}],
    )
    leaf = created(
        me,
        name="leaf",
        parent_harness_id="team",  # a parent may be named, too
        system_prompt="Small PRs.",
        mcpServers={"sentry": {"url": "https://sentry.example.com/mcp", "tool_discovery": False}},
        network_access={"blocked": ["169.254.169.254", "evil.example.com"]},
        default_model_id=None,
        tags=["team-a"],
    )
    return base, team, leaf


# --- lookup ----------------------------------------------------------------------------------
def test_lookup_by_id_and_by_name_with_the_reference_wrapper(me, chain):
    _, team, leaf = chain
    by_id = get(me, leaf["id"]).json()
    by_name = get(me, "leaf").json()
    assert by_id == by_name
    assert by_id["id"].startswith("harness_") and len(by_id["id"]) == len("harness_") + 32
    assert by_id["parent_harness_id"] == team["id"]
    assert by_id["self_url"] == f"http://testserver/v1/harnesses/{leaf['id']}"
    assert by_id["view_url"] == f"http://testserver/admin/tasks/harness/{leaf['id']}/change/"
    assert by_id["ui_link"] == by_id["view_url"]
    assert (by_id["app_count"], by_id["session_count"]) == (0, 0)
    assert by_id["status"] == "active" and by_id["is_built_in"] is False
    # Unresolved: only the definition's own fields.
    assert by_id["system_prompt"] == "Small PRs." and by_id["capabilities"] == []
    assert by_id["initial_files"] == []


def test_default_is_the_built_in_generic_until_the_org_names_one(me, chain):
    generic = get(me, "default").json()
    assert generic["name"] == "generic" and generic["is_built_in"] is True
    response = patch(me, "/v1/harnesses/team", {"is_default": True})
    assert response.status_code == 200 and response.json()["is_default"] is True
    assert get(me, "default").json()["name"] == "team"
    patch(me, "/v1/harnesses/leaf", {"is_default": True})
    assert get(me, "default").json()["name"] == "leaf"
    assert list(Harness.objects.filter(is_default=True).values_list("name", flat=True)) == ["leaf"]


def test_another_orgs_definitions_are_not_found(world, me, chain):
    outsider = world.outsider()
    for ref in (chain[0]["id"], "base"):
        problem(get(outsider, ref), 404, "not_found")
        problem(patch(outsider, f"/v1/harnesses/{ref}", {"description": "x"}), 404, "not_found")
        problem(delete(outsider, f"/v1/harnesses/{ref}"), 404, "not_found")
        problem(outsider.post(f"/v1/harnesses/{ref}/copy", {}), 404, "not_found")
    assert [h["name"] for h in outsider.get("/v1/harnesses").json()["data"]] == ["generic"]
    assert Harness.objects.get(name="base").description is None
    problem(get(me, "harness_" + "0" * 32), 404, "not_found")
    problem(get(me, "nope"), 404, "not_found")
    problem(Caller(None).get("/v1/harnesses"), 401, "not_authenticated")


# --- inheritance -----------------------------------------------------------------------------
def test_resolved_merges_a_three_level_chain_by_the_contract_rules(me, chain):
    base, team, leaf = chain
    body = get(me, "leaf", resolved="true").json()
    assert body["resolved"] is True
    assert body["layers"] == [base["id"], team["id"], leaf["id"]]
    # Prompts stacked, parent first, a blank line between.
    assert body["system_prompt"] == "Be careful.\n\nWrite tests.\n\nSmall PRs."
    # Capabilities by ref: the child's replaces in place, new ones appended.
    assert body["capabilities"] == [
        {"ref": "fs", "config": {"ro": True}},
        {"ref": "git", "config": {"sign": True}},
        {"ref": "web"},
    ]
    # MCP servers by key, the child's replacing.
    assert body["mcpServers"]["docs"]["url"] == "https://team-docs.example.com/mcp"
    assert set(body["mcpServers"]) == {"docs", "jira", "sentry"}
    assert body["mcpServers"]["sentry"]["tool_discovery"] is False
    assert body["mcpServers"]["jira"]["auth_mode"] == "api_key"
    # Files by path (the /workspace prefix is the same path).
    files = {f["path"]: f for f in body["initial_files"]}
    assert files["/README.md"]["content"] == "team readme"
    assert files["/setup.sh"] == {
        "path": "/setup.sh",
        "content": "echo base",
        "encoding": "text",
        "is_readonly": True,
    }
    # Blocked: the union. Allowed: only what every layer allows.
    assert body["network_access"]["blocked"] == [
        "169.254.169.254",
        "10.0.0.0/8",
        "evil.example.com",
    ]
    assert body["network_access"]["allowed"] == ["api.example.com"]
    # The nearest model that is set.
    assert body["default_model_id"] == "model_base"
    origins = body["origins"]
    assert origins["capabilities"] == {"fs": base["id"], "git": team["id"], "web": team["id"]}
    assert origins["mcpServers"]["sentry"] == leaf["id"]
    assert origins["initial_files"]["/README.md"] == team["id"]
    assert origins["default_model_id"] == base["id"]
    assert origins["network_access"]["blocked"]["169.254.169.254"] == [base["id"], leaf["id"]]


def test_a_parent_change_shows_in_children_at_once(me, chain):
    patch(me, "/v1/harnesses/base", {"default_model_id": "model_new", "system_prompt": "Hi."})
    body = get(me, "leaf", resolved="true").json()
    assert body["default_model_id"] == "model_new"
    assert body["system_prompt"].startswith("Hi.\n\n")


def test_a_child_may_only_narrow_allowed_hosts(me):
    created(me, name="wide", network_access={"allowed": ["*.example.com"]})
    created(
        me,
        name="narrow",
        parent_harness_id="wide",
        network_access={"allowed": ["api.example.com", "example.org"]},
    )
    body = get(me, "narrow", resolved="true").json()
    assert body["network_access"] == {"allowed": ["api.example.com"], "blocked": []}


def test_a_chain_without_network_rules_resolves_to_null(me):
    created(me, name="plain", system_prompt="x")
    assert get(me, "plain", resolved="true").json()["network_access"] is None


# --- write rules -----------------------------------------------------------------------------
def test_a_cycle_is_refused_and_nothing_changes(me, chain):
    body = problem(
        patch(me, "/v1/harnesses/base", {"parent_harness_id": "leaf"}), 400, "validation_error"
    )
    assert "cycle" in body["errors"]["parent_harness_id"][0]
    problem(patch(me, "/v1/harnesses/base", {"parent_harness_id": "base"}), 400, "validation_error")
    assert Harness.objects.get(name="base").parent is None


def test_chains_are_at_most_eight_layers(me):
    parent = None
    for n in range(8):
        parent = created(me, name=f"l{n}", parent_harness_id=parent and parent["id"])
    body = problem(create(me, name="l8", parent_harness_id="l7"), 400, "validation_error")
    assert "at most 8" in body["errors"]["parent_harness_id"][0]
    # Re-parenting a subtree under a chain counts the subtree's depth too.
    created(me, name="top")
    created(me, name="mid", parent_harness_id="top")
    problem(patch(me, "/v1/harnesses/top", {"parent_harness_id": "l6"}), 400, "validation_error")
    assert not Harness.objects.filter(name="l8").exists()
    assert Harness.objects.get(name="top").parent is None


def test_a_parent_of_another_org_or_not_active_is_refused(world, me):
    other = created(world.outsider(), name="theirs")
    problem(create(me, name="mine", parent_harness_id=other["id"]), 400, "validation_error")
    created(me, name="old")
    delete(me, "/v1/harnesses/old")
    body = problem(create(me, name="mine", parent_harness_id="old"), 400, "validation_error")
    assert body["errors"]["parent_harness_id"] == ["The parent must be active."]
    assert not Harness.objects.filter(name="mine").exists()


def test_a_parent_with_active_children_cannot_be_archived(me, chain):
    problem(delete(me, "/v1/harnesses/base"), 409, "harness_in_use")
    problem(patch(me, "/v1/harnesses/team", {"status": "archived"}), 409, "harness_in_use")
    assert Harness.objects.get(name="base").status == HarnessStatus.ACTIVE


def test_delete_archives_then_deletes_and_frees_the_name(me):
    created(me, name="temp")
    first = delete(me, "/v1/harnesses/temp")
    assert first.status_code == 200 and first.json()["status"] == "archived"
    assert first.json()["archived_at"] is not None
    assert [h["name"] for h in me.get("/v1/harnesses").json()["data"]] == ["generic"]
    listed = me.get("/v1/harnesses?include_archived=true").json()["data"]
    assert {h["name"] for h in listed} == {"generic", "temp"}
    second = delete(me, "/v1/harnesses/temp")
    assert second.json()["status"] == "deleted" and second.json()["deleted_at"] is not None
    problem(get(me, "temp"), 404, "not_found")
    assert Harness.objects.get(name="temp").status == HarnessStatus.DELETED
    assert created(me, name="temp")["status"] == "active"
    # Unarchive by PATCH.
    created(me, name="back")
    delete(me, "/v1/harnesses/back")
    assert patch(me, "/v1/harnesses/back", {"status": "active"}).json()["archived_at"] is None


def test_a_definition_that_apps_use_cannot_be_deleted(world, me):
    created(me, name="used")
    assert (
        patch(me, f"/api/harness-apps/{world.app.app_id}", {"harness": "used"}).status_code == 200
    )
    delete(me, "/v1/harnesses/used")
    problem(delete(me, "/v1/harnesses/used"), 409, "harness_in_use")
    assert Harness.objects.get(name="used").status == HarnessStatus.ARCHIVED


def test_names_are_unique_per_org_and_never_a_built_in_or_default(world, me):
    created(me, name="same")
    problem(create(me, name="same"), 409, "name_taken")
    problem(create(me, name="generic"), 409, "name_taken")
    assert created(world.outsider(), name="same")["name"] == "same"
    problem(create(me, name="default"), 400, "validation_error")
    assert Harness.objects.filter(name="same").count() == 2


def test_built_in_definitions_are_read_only_and_copy_into_editable_ones(me):
    problem(patch(me, "/v1/harnesses/generic", {"description": "mine"}), 403, "forbidden")
    problem(delete(me, "/v1/harnesses/generic"), 403, "forbidden")
    response = me.post("/v1/harnesses/generic/copy", {})
    assert response.status_code == 201
    copy = response.json()
    assert copy["name"] == "generic-copy" and copy["is_built_in"] is False
    generic = Harness.objects.get(name="generic", org__isnull=True)
    assert copy["system_prompt"] == generic.system_prompt
    assert patch(me, "/v1/harnesses/generic-copy", {"description": "mine"}).status_code == 200
    assert me.post("/v1/harnesses/generic/copy", {}).json()["name"] == "generic-copy-2"
    named = me.post("/v1/harnesses/generic/copy", {"name": "custom"})
    assert named.status_code == 201 and named.json()["name"] == "custom"
    assert generic.description and "mine" not in generic.description


# --- validation --------------------------------------------------------------------------------
B64 = base64.b64encode(b"\x00\x01binary").decode()


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
    }
    assert rows[world.rival.app_id]["harness_id"] is None
    assert rows[world.rival.app_id]["harness_name"] is None
    assert rows[world.rival.app_id]["revoked"] is True
