"""``/v1/harnesses``: harness definitions, their inheritance, and the claim bundle."""

from __future__ import annotations

import pytest

from tasks.models import Harness, HarnessStatus
from tests.helpers import Caller, problem
from tests.tasks import harnesses_support
from tests.tasks.harnesses_support import create, created, delete, get, patch

# The shared fixtures, bound here so that pytest finds them for this module's tests.
chain = harnesses_support.chain
me = harnesses_support.me

pytestmark = pytest.mark.django_db


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
    assert first.status_code == 204 and first.content == b""
    assert get(me, "temp").json()["status"] == "archived"
    assert get(me, "temp").json()["archived_at"] is not None
    assert [h["name"] for h in me.get("/v1/harnesses").json()["data"]] == ["generic"]
    listed = me.get("/v1/harnesses?include_archived=true").json()["data"]
    assert {h["name"] for h in listed} == {"generic", "temp"}
    second = delete(me, "/v1/harnesses/temp")
    assert second.status_code == 204 and second.content == b""
    assert Harness.objects.get(name="temp").deleted_at is not None
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
