"""The harness's context routes (docs/contract.md §3): slices, one document, tools and skills."""

from __future__ import annotations

from corpus.models import Document, Skill, Tool
from corpus.services import document_save
from tests.helpers import Caller, problem
from tests.tasks import context_support
from tests.tasks.context_support import CONTEXT, doc_url, task_doc

# The shared fixtures, bound here so that pytest finds them for this module's tests.
scoped = context_support.scoped


# --- GET /api/harness/context/doc/{doc_id} ----------------------------------------------------


def test_doc_by_id_and_by_path_is_markdown_with_an_etag(world, task, harness, scoped):
    cases = [
        (scoped["profile"].public_id, scoped["profile"]),
        ("profile.md", scoped["profile"]),
        ("project.md", scoped["project"]),
        ("repo.md", scoped["repo"]),
        (task_doc(task).public_id, task_doc(task)),
        (f"task/{task.public_id}.md", task_doc(task)),
    ]
    for ref, doc in cases:
        response = harness.get(doc_url(ref, task.public_id))
        assert response.status_code == 200, (ref, response.content)
        assert response["Content-Type"] == "text/markdown; charset=utf-8"
        assert response.content == doc.body.encode("utf-8"), ref
        assert response["ETag"] == doc.etag


def test_doc_asking_for_markdown_explicitly_gets_markdown(world, task, harness, scoped):
    response = harness.get(doc_url("profile.md", task.public_id), HTTP_ACCEPT="text/markdown")
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "text/markdown; charset=utf-8"
    assert response.content == scoped["profile"].body.encode("utf-8")


def test_if_none_match_is_304_until_the_document_changes(world, task, harness, scoped):
    url = doc_url("project.md", task.public_id)
    first = harness.get(url)
    etag = first["ETag"]
    assert etag == scoped["project"].etag
    unchanged = harness.get(url, HTTP_IF_NONE_MATCH=etag)
    assert unchanged.status_code == 304
    assert unchanged.content == b""
    assert unchanged["ETag"] == etag

    document_save(document=scoped["project"], body="# P, revised\n", user=world.user)
    changed = harness.get(url, HTTP_IF_NONE_MATCH=etag)
    assert changed.status_code == 200
    assert changed.content == b"# P, revised\n"
    assert changed["ETag"] != etag
    assert changed["ETag"] == Document.objects.get(pk=scoped["project"].pk).etag
    assert harness.get(url, HTTP_IF_NONE_MATCH=changed["ETag"]).status_code == 304


def test_if_none_match_uses_weak_comparison_and_lists(world, task, harness, scoped):
    # RFC 9110 §13.1.2: If-None-Match compares weakly and may list several tags.
    url = doc_url("repo.md", task.public_id)
    etag = harness.get(url)["ETag"]
    listed = harness.get(url, HTTP_IF_NONE_MATCH=f'"stale", {etag}')
    assert listed.status_code == 304
    weak = harness.get(url, HTTP_IF_NONE_MATCH=f"W/{etag}")
    assert weak.status_code == 304
    assert harness.get(url, HTTP_IF_NONE_MATCH='"stale"').status_code == 200


def test_doc_as_json_with_accept_application_json(world, task, harness, scoped):
    doc = scoped["repo"]
    response = harness.get(doc_url(doc.public_id, task.public_id), HTTP_ACCEPT="application/json")
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("application/json")
    assert response.json() == {
        "id": doc.public_id,
        "path": "repo.md",
        "title": "repo.md",
        "version": 1,
        "body": "# R\n",
    }
    assert response["ETag"] == doc.etag


def test_doc_outside_the_tasks_scope_is_404(world, task, harness, scoped):
    other = world.task()
    outside = [
        task_doc(other).public_id,
        f"task/{other.public_id}.md",
        scoped["other_project"].public_id,
        scoped["other_repo"].public_id,
        scoped["bob_profile"].public_id,
        scoped["foreign_profile"].public_id,
        scoped["foreign_repo"].public_id,
        "doc_" + "0" * 32,
        "doc_nothex",
        "nothing.md",
        "../profile.md",
    ]
    for ref in outside:
        problem(harness.get(doc_url(ref, task.public_id)), 404, "not_found")
    # The other task's own scope still serves its document.
    assert harness.get(doc_url(f"task/{other.public_id}.md", other.public_id)).status_code == 200
    # An outsider's key cannot read through an acme task.
    problem(world.outsider_harness().get(doc_url("profile.md", task.public_id)), 404, "not_found")


def test_doc_without_task_id_is_400(world, task, harness, scoped):
    body = problem(
        harness.get(f"{CONTEXT}/doc/{scoped['profile'].public_id}"), 400, "validation_error"
    )
    assert "task_id" in body["errors"]


# --- tools and skills -------------------------------------------------------------------------


def test_tools_lists_the_orgs_tools_only(world, harness):
    schema = {"type": "object", "properties": {"query": {"type": "string"}}}
    Tool.objects.create(org=world.org, name="search_code", description="Grep", input_schema=schema)
    Tool.objects.create(org=world.org, name="run_tests", description="Run pytest")
    Tool.objects.create(org=world.outsider_org, name="exfiltrate", description="Globex only")
    response = harness.get("/api/harness/tools")
    assert response.status_code == 200, response.content
    assert response.json() == {
        "tools": [
            {"name": "run_tests", "description": "Run pytest", "input_schema": {}},
            {"name": "search_code", "description": "Grep", "input_schema": schema},
        ]
    }
    outsider = world.outsider_harness().get("/api/harness/tools").json()
    assert [t["name"] for t in outsider["tools"]] == ["exfiltrate"]


def test_skills_lists_the_orgs_skills_by_domain(world, harness):
    Skill.objects.create(
        org=world.org, name="pytest-flakes", domain="testing", description="D1", body="# B1"
    )
    Skill.objects.create(org=world.org, name="django-orm", domain="backend", description="D2")
    Skill.objects.create(
        org=world.outsider_org, name="globex-secret", domain="testing", description="X"
    )
    response = harness.get("/api/harness/skills?domain=testing")
    assert response.status_code == 200, response.content
    assert response.json() == {
        "skills": [
            {"name": "pytest-flakes", "domain": "testing", "description": "D1", "body": "# B1"}
        ],
        "domains": ["backend", "testing"],
    }
    everything = harness.get("/api/harness/skills").json()["skills"]
    assert sorted(s["name"] for s in everything) == ["django-orm", "pytest-flakes"]
    assert harness.get("/api/harness/skills?domain=cooking").json() == {
        "skills": [],
        "domains": ["backend", "testing"],
    }
    # The domain matches whatever its case.
    upper = harness.get("/api/harness/skills?domain=TESTING").json()["skills"]
    assert [s["name"] for s in upper] == ["pytest-flakes"]
    outsider = world.outsider_harness().get("/api/harness/skills?domain=testing").json()
    assert [s["name"] for s in outsider["skills"]] == ["globex-secret"]


# --- 401, 405 ---------------------------------------------------------------------------------


def test_context_routes_need_a_harness_key(world, task, scoped):
    urls = [
        f"{CONTEXT}?task_id={task.public_id}",
        f"{CONTEXT}/pack?task_id={task.public_id}",
        doc_url("profile.md", task.public_id),
        "/api/harness/tools",
        "/api/harness/skills",
    ]
    for caller in (Caller(None), Caller(world.token), Caller("eth_app_wrong")):
        for url in urls:
            response = caller.get(url)
            problem(response, 401, "not_authenticated")
            assert response["WWW-Authenticate"].startswith("Bearer")


def test_context_routes_refuse_other_methods_with_405(world, task, harness, scoped):
    before = list(Document.objects.order_by("pk").values_list("public_id", "version", "body"))
    urls = [
        f"{CONTEXT}?task_id={task.public_id}",
        f"{CONTEXT}/pack?task_id={task.public_id}",
        doc_url("profile.md", task.public_id),
        "/api/harness/tools",
        "/api/harness/skills",
    ]
    for url in urls:
        problem(harness.post(url, {"body": "x"}), 405, "method_not_allowed")
    problem(
        harness.method("delete", doc_url("profile.md", task.public_id)), 405, "method_not_allowed"
    )
    after = list(Document.objects.order_by("pk").values_list("public_id", "version", "body"))
    assert after == before
