"""The harness's context routes (docs/contract.md §3): slices, one document, tools and skills."""

from __future__ import annotations

import pytest

from corpus.models import Document, DocumentVersion
from tests import factories
from tests.helpers import problem
from tests.tasks import context_support
from tests.tasks.context_support import (
    CONTEXT,
    ISO_Z,
    META_KEYS,
    SLICES,
    UNKNOWN_TASK,
    doc_url,
    paths,
    sha,
    slices,
    task_doc,
)

# The shared fixtures, bound here so that pytest finds them for this module's tests.
scoped = context_support.scoped


# --- GET /api/harness/context -----------------------------------------------------------------


def test_context_lists_the_five_slices_in_order_with_doc_metadata(world, task, harness, scoped):
    response = harness.get(f"{CONTEXT}?task_id={task.public_id}")
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"task_id", "slices"}
    assert body["task_id"] == task.public_id
    assert [item["name"] for item in body["slices"]] == SLICES
    for item in body["slices"]:
        assert set(item) == {"name", "docs"}
        for meta in item["docs"]:
            assert set(meta) == META_KEYS
            assert ISO_Z.match(meta["updated_at"])
    by_name = slices(response)
    profile = scoped["profile"]
    assert by_name["profile"] == [
        {
            "id": profile.public_id,
            "path": "profile.md",
            "title": "profile.md",
            "bytes": len("Préfère les petites PR.\n".encode()),
            "sha256": sha("Préfère les petites PR.\n"),
            "version": 1,
            "updated_at": by_name["profile"][0]["updated_at"],
        }
    ]
    assert by_name["profile"][0]["bytes"] == 26  # bytes, not characters
    assert [d["id"] for d in by_name["project"]] == [scoped["project"].public_id]
    assert by_name["project"][0]["title"] == "Project"
    assert [d["id"] for d in by_name["repo"]] == [scoped["repo"].public_id]
    assert paths(by_name["task"]) == [f"task/{task.public_id}.md"]
    assert by_name["task"][0]["id"] == task_doc(task).public_id
    assert by_name["working"] == []
    listed = {d["id"] for docs in by_name.values() for d in docs}
    for name in ("bob_profile", "other_project", "other_repo", "foreign_profile", "foreign_repo"):
        assert scoped[name].public_id not in listed, name


def test_profile_slice_is_the_task_owners_profile(world, task, harness, scoped):
    bob = scoped["bob_profile"].owner
    bobs_task = factories.make_task(world.org, owner=bob, repo=task.repo)
    mine = slices(harness.get(f"{CONTEXT}?task_id={task.public_id}&slices=profile"))
    theirs = slices(harness.get(f"{CONTEXT}?task_id={bobs_task.public_id}&slices=profile"))
    assert [d["id"] for d in mine["profile"]] == [scoped["profile"].public_id]
    assert [d["id"] for d in theirs["profile"]] == [scoped["bob_profile"].public_id]
    # Same repository, same project: those slices are shared, the task slices are not.
    both = slices(harness.get(f"{CONTEXT}?task_id={bobs_task.public_id}"))
    assert [d["id"] for d in both["repo"]] == [scoped["repo"].public_id]
    assert paths(both["task"]) == [f"task/{bobs_task.public_id}.md"]


def test_slices_parameter_returns_just_those(world, task, harness, scoped):
    response = harness.get(f"{CONTEXT}?task_id={task.public_id}&slices=task,repo")
    assert response.status_code == 200, response.content
    body = response.json()
    assert [item["name"] for item in body["slices"]] == ["task", "repo"]
    assert [d["id"] for d in body["slices"][1]["docs"]] == [scoped["repo"].public_id]
    one = harness.get(f"{CONTEXT}?task_id={task.public_id}&slices=working")
    assert [item["name"] for item in one.json()["slices"]] == ["working"]


def test_context_bad_parameters_are_400(world, task, harness):
    body = problem(
        harness.get(f"{CONTEXT}?task_id={task.public_id}&slices=task,bogus"),
        400,
        "validation_error",
    )
    assert "slices" in body["errors"]
    body = problem(harness.get(CONTEXT), 400, "validation_error")
    assert "task_id" in body["errors"]
    body = problem(harness.get(f"{CONTEXT}?task_id="), 400, "validation_error")
    assert "task_id" in body["errors"]


def test_context_of_another_orgs_unknown_or_malformed_task_is_404(world, task, harness):
    problem(world.outsider_harness().get(f"{CONTEXT}?task_id={task.public_id}"), 404, "not_found")
    foreign = factories.make_task(world.outsider_org, owner=world.outsider_user)
    problem(harness.get(f"{CONTEXT}?task_id={foreign.public_id}"), 404, "not_found")
    problem(harness.get(f"{CONTEXT}?task_id={UNKNOWN_TASK}"), 404, "not_found")
    problem(harness.get(f"{CONTEXT}?task_id=task_nothex"), 404, "not_found")


# --- the task document and the working notes -------------------------------------------------


def test_task_document_exists_right_after_create(world, harness):
    repo = factories.make_repo(world.org, "acme/widgets")
    response = world.person().post(
        "/api/tasks",
        {
            "title": "Add a health check",
            "prompt": "GET /healthz answers 200.",
            "definition_of_done": ["GET /healthz answers 200", "A test covers it"],
            "project": repo.project.slug,
            "repo": repo.full_name,
        },
    )
    assert response.status_code == 201, response.content
    task_id = response.json()["id"]
    doc = Document.objects.get(kind="task", task_ref=task_id)
    assert doc.path == f"task/{task_id}.md" and doc.org == world.org
    assert (doc.title, doc.version, doc.updated_by) == ("Add a health check", 1, world.user)
    assert "# Add a health check" in doc.body
    assert "GET /healthz answers 200." in doc.body
    assert "- [ ] GET /healthz answers 200\n" in doc.body
    assert "- [ ] A test covers it\n" in doc.body
    assert DocumentVersion.objects.filter(document=doc).count() == 1

    listed = slices(harness.get(f"{CONTEXT}?task_id={task_id}&slices=task"))
    assert [(d["id"], d["version"], d["sha256"]) for d in listed["task"]] == [
        (doc.public_id, 1, doc.sha256)
    ]
    fetched = harness.get(doc_url(f"task/{task_id}.md", task_id))
    assert fetched.status_code == 200
    assert fetched.content.decode() == doc.body


def test_interrupt_and_answer_add_versions_to_the_task_document(world, task, harness, claimed):
    doc = task_doc(task)
    assert doc.version == 1 and "Which DB?" not in doc.body
    response = harness.interrupt(task.public_id, claimed["run_id"], question="Which DB?")
    assert response.status_code == 200, response.content
    doc.refresh_from_db()
    assert doc.version == 2
    assert "Which DB?" in doc.body and "Waiting for an answer" in doc.body

    response = world.person().post(f"/api/tasks/{task.public_id}/answer", {"answer": "Postgres"})
    assert response.status_code == 200, response.content
    doc.refresh_from_db()
    assert doc.version == 3
    assert "Which DB?" in doc.body and "Postgres" in doc.body
    assert "Waiting for an answer" not in doc.body
    assert doc.updated_by == world.user
    versions = DocumentVersion.objects.filter(document=doc).order_by("version")
    assert [v.version for v in versions] == [1, 2, 3]
    assert "Postgres" not in versions[1].body and "Postgres" in versions[2].body

    listed = slices(harness.get(f"{CONTEXT}?task_id={task.public_id}&slices=task"))
    assert listed["task"][0]["version"] == 3
    assert listed["task"][0]["sha256"] == sha(doc.body)
    fetched = harness.get(doc_url(doc.public_id, task.public_id))
    assert "Postgres" in fetched.content.decode()


def test_withdrawn_question_adds_a_version_to_the_task_document(world, task, harness, claimed):
    assert harness.interrupt(task.public_id, claimed["run_id"]).status_code == 200
    response = world.person().post(f"/api/tasks/{task.public_id}/cancel")
    assert response.status_code == 200, response.content
    doc = task_doc(task)
    assert doc.version == 3
    assert "Withdrawn unanswered" in doc.body
    assert DocumentVersion.objects.filter(document=doc).count() == 3


def test_claim_bundle_doc_ids_equal_the_context_route(world, task, harness, scoped):
    claim = harness.claim(task.public_id)
    assert claim.status_code == 200, claim.content
    context = claim.json()["bundle"]["context"]
    listed = slices(harness.get(f"{CONTEXT}?task_id={task.public_id}"))
    expected = [d["id"] for name in SLICES for d in listed[name]]
    assert context["doc_ids"] == expected
    assert context["slices"] == SLICES
    assert set(expected) == {
        scoped["profile"].public_id,
        scoped["project"].public_id,
        scoped["repo"].public_id,
        task_doc(task).public_id,
    }


@pytest.mark.parametrize("status", ["submitted", "no_changes"])
def test_working_summary_becomes_a_working_document(world, task, harness, claimed, status):
    run_id = claimed["run_id"]
    summary = "Tried pinning the seed; the race is in the fixture."
    response = harness.result(task.public_id, run_id, status, working_summary=summary)
    assert response.status_code == 200, response.content
    doc = Document.objects.get(kind="working", run_ref=run_id)
    assert doc.path == f"working/{run_id}.md"
    assert (doc.org, doc.task_ref, doc.body, doc.version) == (world.org, task.public_id, summary, 1)
    listed = slices(harness.get(f"{CONTEXT}?task_id={task.public_id}&slices=working"))
    assert [(d["id"], d["path"], d["bytes"]) for d in listed["working"]] == [
        (doc.public_id, f"working/{run_id}.md", len(summary.encode()))
    ]
    fetched = harness.get(doc_url(f"working/{run_id}.md", task.public_id))
    assert fetched.status_code == 200 and fetched.content.decode() == summary
    # Another task never sees it.
    other = world.task()
    problem(harness.get(doc_url(doc.public_id, other.public_id)), 404, "not_found")
    assert slices(harness.get(f"{CONTEXT}?task_id={other.public_id}"))["working"] == []


def test_working_summary_is_stored_verbatim(task, harness, claimed):
    # Markdown is whitespace-significant: an indented first line is a code block.
    summary = "    pytest -p no:randomly tests/test_widget.py\n\nStill flaky.\n"
    response = harness.result(task.public_id, claimed["run_id"], working_summary=summary)
    assert response.status_code == 200, response.content
    doc = Document.objects.get(kind="working", run_ref=claimed["run_id"])
    assert doc.body == summary
    fetched = harness.get(doc_url(doc.public_id, task.public_id))
    assert fetched.content == summary.encode("utf-8")


def test_result_without_working_summary_writes_no_working_document(task, harness, claimed):
    response = harness.result(task.public_id, claimed["run_id"], working_summary="   ")
    assert response.status_code == 200, response.content
    assert not Document.objects.filter(kind="working").exists()
