"""``/v1/harnesses`` the Everruns way (docs/contract.md §4, "Everruns compatibility"):
the bare token, unpaged lists, network lists, the extra routes and the PATCH/DELETE
rules Everruns' clients rely on. Responses are checked against Everruns' OpenAPI by the
fixture in tests/tasks/conftest.py."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from tests.helpers import problem

pytestmark = pytest.mark.django_db


def bare(secret: str) -> Client:
    return Client(HTTP_AUTHORIZATION=secret)


# --- the bare token --------------------------------------------------------------------------
def test_v1_takes_a_personal_token_without_bearer(world):
    response = bare(world.token).get("/v1/harnesses")
    assert response.status_code == 200
    assert "generic" in [h["name"] for h in response.json()["data"]]


@pytest.mark.parametrize(
    "header",
    [
        "eth_pat_" + "x" * 43,  # our format, unknown token
        "evr_pat_0123456789abcdef",  # Everruns' own format: not ours
        "Basic YWxpY2U6cGFzcw==",
        "token",
        "",
    ],
)
def test_v1_refuses_anything_else_without_bearer(world, header):
    problem(bare(header).get("/v1/harnesses"), 401, "not_authenticated")


def test_a_bare_harness_key_is_refused_on_v1_and_bare_tokens_only_work_on_v1(world):
    body = problem(bare(world.key).get("/v1/harnesses"), 401, "not_authenticated")
    assert "personal access token" in body["detail"]
    # The product API and the harness API keep the Bearer scheme.
    problem(bare(world.token).get("/api/tasks"), 401, "not_authenticated")
    problem(bare(world.key).get("/api/harness/tools"), 401, "not_authenticated")
    # A bare token with trailing junk is not a token.
    problem(bare(world.token + " x").get("/v1/harnesses"), 401, "not_authenticated")


# --- lists -----------------------------------------------------------------------------------
def test_the_list_is_one_unpaged_data_list_unless_limit_or_cursor_is_given(world):
    from tasks.models import Harness

    Harness.objects.bulk_create(
        Harness(org=world.org, name=f"h{n:03d}", display_name=f"H {n}") for n in range(60)
    )
    me = world.person()
    everything = me.get("/v1/harnesses").json()
    assert len(everything["data"]) == 61 and everything["next_cursor"] is None
    names = [h["name"] for h in everything["data"]]
    assert names[:1] == ["generic"] or "generic" in names
    page = me.get("/v1/harnesses?limit=50").json()
    assert len(page["data"]) == 50 and page["next_cursor"]
    rest = me.get(f"/v1/harnesses?cursor={page['next_cursor']}").json()
    assert len(rest["data"]) == 11 and rest["next_cursor"] is None
    assert [h["name"] for h in page["data"] + rest["data"]] == names
    # The search narrows the unpaged list too.
    assert len(me.get("/v1/harnesses?search=h05").json()["data"]) == 10


# --- network access --------------------------------------------------------------------------
def _make(me, **fields):
    response = me.post("/v1/harnesses", fields)
    assert response.status_code == 201, response.content
    return response.json()


def test_network_lists_are_always_arrays_and_empty_allowed_is_no_allow_list(world):
    from tasks.models import Harness

    me = world.person()
    generic = me.get("/v1/harnesses/generic").json()["network_access"]
    assert generic["allowed"] == [] and "169.254.169.254" in generic["blocked"]
    _make(me, name="wide", network_access={"allowed": ["*.example.com"]})
    # What the SDK sends by default: allowed [] with a blocked list.
    child = _make(
        me,
        name="child",
        parent_harness_id="wide",
        network_access={"allowed": [], "blocked": ["evil.example.com"]},
    )
    assert child["network_access"] == {"allowed": [], "blocked": ["evil.example.com"]}
    resolved = me.get("/v1/harnesses/child?resolved=true").json()["network_access"]
    assert resolved == {"allowed": ["*.example.com"], "blocked": ["evil.example.com"]}
    # allowed null and blocked null are empty lists too; stored as arrays.
    nulls = _make(me, name="nulls", network_access={"allowed": None, "blocked": None})
    assert nulls["network_access"] == {"allowed": [], "blocked": []}
    assert Harness.objects.get(name="nulls").network_access == {"allowed": [], "blocked": []}
    only_blocked = _make(me, name="only-blocked", network_access={"blocked": ["10.0.0.0/8"]})
    assert only_blocked["network_access"] == {"allowed": [], "blocked": ["10.0.0.0/8"]}
    # No layer with an allow-list: [] (unrestricted), blocked the union.
    _make(me, name="grand", parent_harness_id="only-blocked", network_access={})
    resolved = me.get("/v1/harnesses/grand?resolved=true").json()["network_access"]
    assert resolved == {"allowed": [], "blocked": ["10.0.0.0/8"]}


def test_allow_lists_with_nothing_in_common_allow_nothing(world):
    from tasks.harnesses.definitions import ALLOW_NOTHING

    me = world.person()
    _make(me, name="a", network_access={"allowed": ["a.example.com"]})
    _make(me, name="b", parent_harness_id="a", network_access={"allowed": ["b.example.org"]})
    _make(me, name="c", parent_harness_id="b", network_access={"allowed": ["a.example.com"]})
    for name in ("b", "c"):
        resolved = me.get(f"/v1/harnesses/{name}?resolved=true").json()["network_access"]
        assert resolved == {"allowed": [ALLOW_NOTHING], "blocked": []}, name


def test_the_migration_keeps_what_stored_network_rules_meant(world):
    from importlib import import_module

    from django.apps import apps

    from tasks.harnesses.definitions import ALLOW_NOTHING
    from tasks.models import Harness

    migration = import_module("tasks.migrations.0007_network_access_lists_are_arrays")
    old = {
        "open": {"allowed": None, "blocked": ["10.0.0.0/8"]},
        "closed": {"allowed": [], "blocked": []},
        "listed": {"allowed": ["pypi.org"]},
        "none": None,
    }
    for name, value in old.items():
        Harness.objects.create(org=world.org, name=name, display_name=name, network_access=value)
    Harness.objects.filter(name="generic").update(
        network_access={"allowed": None, "blocked": ["169.254.169.254"]}
    )
    migration.forwards(apps, None)
    stored = dict(Harness.objects.values_list("name", "network_access"))
    assert stored["open"] == {"allowed": [], "blocked": ["10.0.0.0/8"]}
    assert stored["closed"] == {"allowed": [ALLOW_NOTHING], "blocked": []}
    assert stored["listed"] == {"allowed": ["pypi.org"], "blocked": []}
    assert stored["none"] is None
    assert stored["generic"] == {"allowed": [], "blocked": ["169.254.169.254"]}
    migration.backwards(apps, None)
    stored = dict(Harness.objects.values_list("name", "network_access"))
    assert stored["open"] == {"allowed": None, "blocked": ["10.0.0.0/8"]}
    assert stored["closed"] == {"allowed": [], "blocked": []}
    assert stored["listed"] == {"allowed": ["pypi.org"], "blocked": []}


# --- create, update, delete ------------------------------------------------------------------
def patch(me, ref, data):
    return me.client.patch(
        f"/v1/harnesses/{ref}", data, content_type="application/json", **me.headers
    )


def test_create_needs_only_a_name(world):
    from tasks.models import Harness

    body = _make(world.person(), name="bare")
    assert body["system_prompt"] == "" and body["display_name"] == "bare"
    assert body["capabilities"] == [] and body["network_access"] is None
    assert body["embedder_metadata"] == {} and body["parallel_tool_calls"] is None
    row = Harness.objects.get(name="bare")
    assert (row.system_prompt, row.tags, row.embedder_metadata) == ("", [], {})
    problem(world.person().post("/v1/harnesses", {}), 400, "validation_error")
    # Everruns' create request, nulls included, is taken as sent.
    everruns = _make(
        world.person(),
        name="nulls",
        system_prompt=None,
        display_name=None,
        description=None,
        default_model_id=None,
        parent_harness_id=None,
        network_access=None,
    )
    assert everruns["system_prompt"] == "" and everruns["display_name"] == "nulls"


def test_embedder_metadata_and_parallel_tool_calls_are_stored_and_served(world):
    from tasks.models import Harness

    me = world.person()
    body = _make(me, name="meta", embedder_metadata={"team": "platform"}, parallel_tool_calls=False)
    assert body["embedder_metadata"] == {"team": "platform"}
    assert body["parallel_tool_calls"] is False
    row = Harness.objects.get(name="meta")
    assert (row.embedder_metadata, row.parallel_tool_calls) == ({"team": "platform"}, False)
    changed = patch(me, "meta", {"embedder_metadata": {"env": "prod"}, "parallel_tool_calls": True})
    assert changed.json()["embedder_metadata"] == {"env": "prod"}
    assert me.get("/v1/harnesses/meta").json()["parallel_tool_calls"] is True
    copy = me.post("/v1/harnesses/meta/copy", {}).json()
    assert copy["embedder_metadata"] == {"env": "prod"} and copy["parallel_tool_calls"] is True
    for bad in ({"embedder_metadata": {"n": 1}}, {"embedder_metadata": ["x"]}):
        body = problem(patch(me, "meta", bad), 400, "validation_error")
        assert "embedder_metadata" in str(body["errors"])
    problem(patch(me, "meta", {"parallel_tool_calls": "yes"}), 400, "validation_error")
    row.refresh_from_db()
    assert (row.embedder_metadata, row.parallel_tool_calls) == ({"env": "prod"}, True)


def test_patch_null_clears_nullable_fields_and_names_required_ones(world):
    from tasks.models import Harness

    me = world.person()
    _make(me, name="parent")
    _make(
        me,
        name="full",
        display_name="Full",
        description="d",
        system_prompt="p",
        capabilities=[{"ref": "fs"}],
        mcpServers={"docs": {"url": "https://docs.example.com/mcp"}},
        network_access={"allowed": ["pypi.org"]},
        parent_harness_id="parent",
        initial_files=[{"path": "/a", "content": "x"}],
        default_model_id="m",
        tags=["t"],
        embedder_metadata={"k": "v"},
        parallel_tool_calls=True,
    )
    cleared = {
        key: None
        for key in (
            "display_name",
            "description",
            "system_prompt",
            "capabilities",
            "mcpServers",
            "network_access",
            "parent_harness_id",
            "initial_files",
            "default_model_id",
            "tags",
            "embedder_metadata",
            "parallel_tool_calls",
        )
    }
    response = patch(me, "full", cleared)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["display_name"] == "full"  # falls back to the name
    assert body["description"] is None and body["system_prompt"] == ""
    assert (body["capabilities"], body["mcpServers"], body["initial_files"]) == ([], {}, [])
    assert body["network_access"] is None and body["parent_harness_id"] is None
    assert body["default_model_id"] is None and body["tags"] == []
    assert body["embedder_metadata"] == {} and body["parallel_tool_calls"] is None
    row = Harness.objects.get(name="full")
    assert (row.parent, row.mcp_servers, row.network_access) == (None, {}, None)
    for field in ("name", "status", "is_default"):
        body = problem(patch(me, "full", {field: None}), 400, "validation_error")
        assert list(body["errors"]) == [field]
    assert Harness.objects.get(name="full").status == "active"


def test_status_deleted_in_a_patch_deletes_under_the_rules_of_delete(world):
    from tasks.models import Harness, HarnessApp

    me = world.person()
    _make(me, name="gone")
    response = patch(me, "gone", {"status": "deleted"})
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "deleted" and response.json()["deleted_at"]
    problem(me.get("/v1/harnesses/gone"), 404, "not_found")
    assert Harness.objects.get(name="gone").status == "deleted"
    # A definition an app uses, or one with children, is not deleted.
    _make(me, name="used")
    HarnessApp.objects.filter(pk=world.app.pk).update(harness=Harness.objects.get(name="used"))
    problem(patch(me, "used", {"status": "deleted"}), 409, "harness_in_use")
    _make(me, name="parent")
    _make(me, name="kid", parent_harness_id="parent")
    problem(patch(me, "parent", {"status": "deleted"}), 409, "harness_in_use")
    assert set(Harness.objects.filter(status="active").values_list("name", flat=True)) >= {
        "used",
        "parent",
    }


def test_delete_answers_204_without_a_body(world):
    me = world.person()
    _make(me, name="temp")
    for expected in ("archived", "deleted"):
        response = me.client.delete("/v1/harnesses/temp", **me.headers)
        assert response.status_code == 204 and response.content == b""
        from tasks.models import Harness

        assert Harness.objects.get(name="temp").status == expected


# --- reserved names --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name", ["config", "check-name", "import", "preview", "stats", "harness-examples", "default"]
)
def test_route_words_cannot_name_a_harness(world, name):
    from tasks.models import Harness

    me = world.person()
    body = problem(me.post("/v1/harnesses", {"name": name}), 400, "validation_error")
    assert "reserved" in body["errors"]["name"][0]
    _make(me, name="mine")
    problem(patch(me, "mine", {"name": name}), 400, "validation_error")
    problem(me.post("/v1/harnesses/mine/copy", {"name": name}), 400, "validation_error")
    assert not Harness.objects.filter(name=name).exists()


def test_the_migration_renames_existing_harnesses_with_route_names(world):
    from importlib import import_module

    from django.apps import apps

    from tasks.models import Harness

    migration = import_module("tasks.migrations.0009_rename_harnesses_with_route_names")
    config = Harness.objects.create(org=world.org, name="config", display_name="Config")
    Harness.objects.create(org=world.org, name="config-harness", display_name="Taken")
    theirs = Harness.objects.create(org=world.outsider_org, name="config", display_name="C")
    preview = Harness.objects.create(org=world.org, name="preview", display_name="P")
    gone = Harness.objects.create(org=world.org, name="import", display_name="I", status="deleted")
    migration.rename(apps, None)
    for row in (config, theirs, preview, gone):
        row.refresh_from_db()
    assert config.name == "config-harness-2" and theirs.name == "config-harness"
    assert preview.name == "preview-harness" and gone.name == "import"
    # Reachable by the new name, and the route answers for the old one.
    me = world.person()
    assert me.get("/v1/harnesses/config-harness-2").json()["id"] == config.public_id
    assert set(me.get("/v1/harnesses/config").json()) == {"policies"}


# --- the schema check itself -----------------------------------------------------------------
def test_the_everruns_schema_check_catches_what_issue_17_found(world):
    """The autouse check (tests/conftest.py) must fail on each shape Everruns refuses."""
    from tests.harness_schema import check_response

    good = world.person().get("/v1/harnesses/generic")
    body = good.json()
    type_ = "application/json"
    assert check_response("GET", "/v1/harnesses/generic", 200, good.content, type_) == 1
    with_null = json.dumps({**body, "network_access": {"allowed": None, "blocked": []}})
    without_counts = json.dumps({k: v for k, v in body.items() if k != "app_count"})
    bad_time = json.dumps({**body, "created_at": "yesterday"})
    for content in (with_null, without_counts, bad_time):
        with pytest.raises(AssertionError, match="does not fit"):
            check_response("GET", "/v1/harnesses/generic", 200, content.encode(), type_)
    with pytest.raises(AssertionError, match="Everruns answers"):
        check_response("DELETE", "/v1/harnesses/x", 200, good.content, type_)
    with pytest.raises(AssertionError, match="no body"):
        check_response("DELETE", "/v1/harnesses/x", 204, b"{}", type_)
    unpaged = json.dumps({"next_cursor": None}).encode()
    with pytest.raises(AssertionError, match="does not fit"):
        check_response("GET", "/v1/harnesses", 200, unpaged, type_)
    problem_doc = json.dumps({"type": "t", "detail": "d"}).encode()  # no title, no status
    with pytest.raises(AssertionError, match="does not fit"):
        check_response("GET", "/v1/harnesses/x", 404, problem_doc, "application/problem+json")
    # Paths Everruns does not define are not its business.
    assert check_response("GET", "/api/harness-apps", 200, b"{}", type_) == 0
