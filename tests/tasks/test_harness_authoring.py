"""The authoring routes beside ``/v1/harnesses`` (issue 17): the examples gallery and its
import, check-name, config, preview and stats. Responses are checked against Everruns'
OpenAPI by the fixture in tests/tasks/conftest.py."""

from __future__ import annotations

import json

import pytest

from corpus.models import Tool
from tasks.harnesses.gallery import examples
from tasks.harnesses.serializers import HarnessIn
from tasks.models import Harness, HarnessApp, Run
from tests.helpers import problem

pytestmark = pytest.mark.django_db


def make(me, **fields):
    response = me.post("/v1/harnesses", fields)
    assert response.status_code == 201, response.content
    return response.json()


def patch(me, path, data):
    return me.client.patch(path, json.dumps(data), content_type="application/json", **me.headers)


# --- examples and import ---------------------------------------------------------------------
def test_every_example_passes_the_checks_of_a_create():
    names = [e.name for e in examples()]
    assert {"careful-reviewer", "test-first-coder", "docs-writer"} <= set(names)
    for example in examples():
        serializer = HarnessIn(data=example.create_body(example.name))
        assert serializer.is_valid(), (example.name, serializer.errors)
        assert len(example.definition["system_prompt"]) > 200, example.name


def test_the_gallery_lists_every_example(world):
    response = world.person().get("/v1/harness-examples")
    assert response.status_code == 200
    listed = response.json()
    assert [e["name"] for e in listed] == [e.name for e in examples()]
    reviewer = next(e for e in listed if e["name"] == "careful-reviewer")
    assert reviewer["parent_name"] == "generic" and reviewer["dev_only"] is False
    assert reviewer["capabilities"][0]["ref"] == "ether.context"
    assert "Correctness" in reviewer["system_prompt"]


def test_import_makes_an_org_definition_under_generic_and_suffixes_a_taken_name(world):
    me = world.person()
    response = me.post("/v1/harnesses/import?from-example=careful-reviewer", {})
    assert response.status_code == 201, response.content
    body = response.json()
    generic = Harness.objects.get(org__isnull=True, name="generic")
    assert body["name"] == "careful-reviewer" and body["is_built_in"] is False
    assert body["parent_harness_id"] == generic.public_id
    assert body["tags"] == ["review", "quality"]
    assert body["initial_files"][0]["path"] == "/REVIEW_CHECKLIST.md"
    row = Harness.objects.get(public_id=body["id"])
    assert row.org == world.org and row.system_prompt.startswith("You review code")
    again = me.post("/v1/harnesses/import?from-example=careful-reviewer", {}).json()
    assert again["name"].startswith("careful-reviewer-") and len(again["name"]) == 23
    resolved = me.get(f"/v1/harnesses/{body['id']}?resolved=true").json()
    assert resolved["system_prompt"].startswith(generic.system_prompt.strip())
    # The other org sees none of it.
    assert [h["name"] for h in world.outsider().get("/v1/harnesses").json()["data"]] == ["generic"]


def test_import_refuses_unknown_examples_and_a_missing_parameter(world):
    me = world.person()
    before = Harness.objects.count()
    problem(me.post("/v1/harnesses/import?from-example=nope", {}), 404, "not_found")
    body = problem(me.post("/v1/harnesses/import", {}), 400, "validation_error")
    assert "from_example" in body["errors"] or "from-example" in body["errors"]
    problem(me.get("/v1/harnesses/import"), 405, "method_not_allowed")
    assert Harness.objects.count() == before


# --- check-name and config -------------------------------------------------------------------
def test_check_name_says_whether_a_name_is_free(world):
    me = world.person()
    mine = make(me, name="taken")
    make(world.outsider(), name="theirs")

    def check(query):
        response = me.get(f"/v1/harnesses/check-name?{query}")
        assert response.status_code == 200, response.content
        return response.json()

    assert check("name=fresh") == {"available": True}
    assert check("name=theirs") == {"available": True}  # another org's names do not count
    assert check("name=taken")["available"] is False
    assert check("name=generic")["available"] is False
    assert "reserved" in check("name=config")["reason"]
    assert check("name=Bad--Name")["available"] is False
    assert check(f"name=taken&exclude_id={mine['id']}") == {"available": True}
    problem(me.get("/v1/harnesses/check-name"), 400, "validation_error")


def test_config_lists_the_callers_policies(world):
    body = world.person().get("/v1/harnesses/config").json()
    assert body["policies"]["create"] is True and body["policies"]["delete"] is True
    problem(world.person().post("/v1/harnesses/config", {}), 405, "method_not_allowed")


# --- preview ---------------------------------------------------------------------------------
def test_preview_resolves_a_draft_and_saves_nothing(world):
    me = world.person()
    make(me, name="base", system_prompt="Be careful.", network_access={"allowed": ["a.io"]})
    Tool.objects.create(org=world.org, name="grep", description="Search", input_schema={})
    before = list(Harness.objects.values_list("pk", "name", "system_prompt"))
    response = me.post(
        "/v1/harnesses/preview",
        {
            "system_prompt": "Draft.",
            "parent_harness_id": "base",
            "capabilities": [{"ref": "fs"}],
            "mcpServers": {"docs": {"url": "https://docs.example.com/mcp"}},
        },
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["system_prompt"] == "Be careful.\n\nDraft."
    assert body["tools"] == [{"name": "grep", "description": "Search", "input_schema": {}}]
    harness = body["harness"]
    assert harness["id"] == "draft" and harness["layers"][-1] == "draft"
    assert harness["self_url"] is None and harness["name"] == harness["display_name"] == "draft"
    assert harness["network_access"] == {"allowed": ["a.io"], "blocked": []}
    assert harness["origins"]["capabilities"] == {"fs": "draft"}
    assert list(Harness.objects.values_list("pk", "name", "system_prompt")) == before


def test_preview_with_an_app_is_exactly_the_bundle_that_app_would_claim(world, task):
    me = world.person()
    make(me, name="base", system_prompt="Base.")
    make(me, name="team", parent_harness_id="base", system_prompt="Team.")
    patch(me, f"/api/harness-apps/{world.app.app_id}", {"harness": "team"})
    # A change to the parent, previewed for the app that uses the child.
    preview = me.post(
        "/v1/harnesses/preview",
        {"harness_id": "base", "system_prompt": "New base.", "app_id": world.app.app_id},
    )
    assert preview.status_code == 200, preview.content
    assert preview.json()["system_prompt"] == "New base.\n\nTeam."
    assert Harness.objects.get(name="base").system_prompt == "Base."
    # Saved for real, the claim's bundle is what the preview showed.
    patch(me, "/v1/harnesses/base", {"system_prompt": "New base."})
    claim = world.harness().claim(task.public_id).json()
    bundled = claim["bundle"]["harness"]
    expected = preview.json()["harness"]
    for volatile in ("updated_at", "session_count"):
        bundled.pop(volatile), expected.pop(volatile)
    assert bundled == expected
    # A new draft for an app: the app pointed at it, nothing stored.
    draft = me.post(
        "/v1/harnesses/preview", {"system_prompt": "Solo.", "app_id": world.rival.app_id}
    ).json()
    assert draft["harness"]["id"] == "draft" and draft["harness"]["app_count"] == 1
    assert HarnessApp.objects.get(pk=world.rival.pk).harness is None


def test_preview_refuses_bad_drafts_and_other_orgs(world):
    me = world.person()
    make(me, name="mine")
    before = Harness.objects.count()
    problem(me.post("/v1/harnesses/preview", {"capabilities": "x"}), 400, "validation_error")
    problem(
        me.post("/v1/harnesses/preview", {"parent_harness_id": "nope"}), 400, "validation_error"
    )
    problem(me.post("/v1/harnesses/preview", {"app_id": "nope"}), 404, "not_found")
    outsider = world.outsider()
    problem(outsider.post("/v1/harnesses/preview", {"harness_id": "mine"}), 404, "not_found")
    problem(
        outsider.post("/v1/harnesses/preview", {"app_id": world.rival.app_id}), 404, "not_found"
    )
    problem(me.post("/v1/harnesses/preview", {"harness_id": "generic"}), 403, "forbidden")
    assert Harness.objects.count() == before


# --- stats -----------------------------------------------------------------------------------
def test_stats_count_runs_steps_apps_and_outcomes_of_the_org(world):
    me = world.person()
    make(me, name="used")
    patch(me, f"/api/harness-apps/{world.app.app_id}", {"harness": "used"})
    empty = me.get("/v1/harnesses/used/stats").json()
    assert empty["session_count"] == 0 and empty["avg_session_duration_ms"] is None
    assert empty["app_count"] == 1 and empty["first_session_at"] is None

    harness = world.harness()
    done, live = world.task(), world.task()
    run_id = harness.claim(done.public_id).json()["run_id"]
    harness.step(done.public_id, run_id)
    harness.step(done.public_id, run_id, "Second")
    assert harness.result(done.public_id, run_id).status_code == 200
    harness.claim(live.public_id)

    stats = me.get("/v1/harnesses/used/stats").json()
    assert stats["session_count"] == 2 and stats["active_session_count"] == 1
    assert stats["started_session_count"] == 1 and stats["execution_count"] == 2
    assert stats["outcomes"] == {
        "live": 1,
        "submitted": 0,
        "blocked": 0,
        "no_changes": 1,
        "expired": 0,
        "released": 0,
    }
    assert stats["avg_session_duration_ms"] is not None and stats["last_execution_at"]
    assert stats["total_cost_usd"] == 0.0
    assert Run.objects.filter(harness__name="used").count() == 2
    # Another org counts only its own runs of a shared built-in, and cannot see this one.
    problem(world.outsider().get("/v1/harnesses/used/stats"), 404, "not_found")
    assert world.outsider().get("/v1/harnesses/generic/stats").json()["session_count"] == 0
