"""Repository-level memory: an admin promotes a task's note (or part of one) into the
repository's ``repo.md``, seeing the diff first, guarded against lost updates."""

from __future__ import annotations

import json
from typing import Any

import pytest

from corpus.models import Document, DocumentVersion
from tests.helpers import problem


@pytest.fixture
def admin(world: Any) -> Any:
    world.user.is_staff = True
    world.user.save()
    return world.person()


@pytest.fixture
def note_path(world: Any, task: Any, harness: Any, claimed: dict) -> str:
    summary = "## Decisions\n\n- Postgres advisory locks for the claim\n\n## Log\n\nlong story\n"
    response = harness.result(
        task.public_id, claimed["run_id"], "no_changes", working_summary=summary
    )
    assert response.status_code == 200, response.content
    return f"working/{claimed['run_id']}.md"


def promote(caller: Any, task: Any, **body: Any) -> Any:
    headers = {}
    if "if_match" in body:
        headers["HTTP_IF_MATCH"] = body.pop("if_match")
    return caller.post(f"/api/tasks/{task.public_id}/memory/promote", body, **headers)


PART = "- Postgres advisory locks for the claim"


def test_preview_shows_the_diff_and_stores_nothing(admin, task, note_path):
    response = promote(admin, task, source=note_path, text=PART)
    assert response.status_code == 200, response.content
    data = response.json()
    assert (data["saved"], data["document"], data["etag"], data["before"]) == (
        False,
        None,
        "*",
        "",
    )
    assert data["repo"] == task.repo.full_name
    assert data["after"] == (
        f"# {task.repo.full_name}\n\n## From {note_path} ({task.public_id})\n\n{PART}\n"
    )
    assert f"+{PART}" in data["diff"].splitlines()
    assert not Document.objects.filter(kind="repo").exists()


def test_save_creates_then_appends_with_if_match(world, admin, task, note_path, harness):
    first = promote(admin, task, source=note_path, text=PART, save=True, if_match="*")
    assert first.status_code == 200, first.content
    doc = Document.objects.get(kind="repo", repo=task.repo)
    assert doc.body == first.json()["after"] and doc.version == 1
    assert first["ETag"] == doc.etag == first.json()["etag"]
    # The next preview appends below, and its ETag guards the save.
    preview = promote(admin, task, source=note_path, text="Never sleep() in tests.").json()
    assert preview["before"] == doc.body
    assert preview["diff"].splitlines()[-1] == "+Never sleep() in tests."
    saved = promote(
        admin,
        task,
        source=note_path,
        text="Never sleep() in tests.",
        save=True,
        if_match=preview["etag"],
    )
    assert saved.status_code == 200, saved.content
    doc.refresh_from_db()
    assert doc.version == 2 and doc.body == preview["after"]
    version = DocumentVersion.objects.get(document=doc, version=2)
    assert version.note == f"promoted from {note_path} of {task.public_id}"
    assert version.created_by == world.user
    # Every later task on this repository reads it in its repo slice.
    later = world.task(repo=task.repo)
    context = harness.get(f"/api/harness/context?task_id={later.public_id}&slices=repo")
    assert context.json()["slices"][0]["docs"][0]["id"] == doc.public_id


def test_a_save_after_someone_elses_is_412_and_stores_nothing(world, admin, task, note_path):
    promote(admin, task, source=note_path, text=PART, save=True, if_match="*")
    doc = Document.objects.get(kind="repo")
    stale = promote(admin, task, source=note_path, text="mine").json()["etag"]
    # Someone edits repo.md meanwhile.
    other = world.person().method(
        "PUT",
        f"/api/context/docs/{doc.public_id}",
        data=json.dumps({"body": doc.body + "\nTheirs.\n"}),
        content_type="application/json",
    )
    assert other.status_code == 200
    body = problem(
        promote(admin, task, source=note_path, text="mine", save=True, if_match=stale),
        412,
        "precondition_failed",
    )
    assert body["current_version"] == 2
    doc.refresh_from_db()
    assert doc.version == 2 and "mine" not in doc.body
    # Without If-Match on an existing document: 412 too, naming the ETag to send.
    problem(promote(admin, task, source=note_path, text="x", save=True), 412, "precondition_failed")


def test_only_staff_may_promote(world, task, note_path):
    problem(promote(world.person(), task, source=note_path, text=PART), 403, "forbidden")
    assert not Document.objects.filter(kind="repo").exists()


def test_bad_sources_and_bodies(admin, task, note_path, world):
    problem(promote(admin, task, source="working/run_nope.md", text=PART), 404, "not_found")
    problem(promote(admin, task, source=f"task/{task.public_id}.md", text=PART), 404, "not_found")
    problem(promote(admin, task, source=note_path, text=""), 400, "validation_error")
    problem(promote(admin, task, source=note_path, text=PART, save="yes"), 400, "validation_error")
    problem(promote(admin, task, source=note_path, text=PART, extra=1), 400, "validation_error")
    outsider = world.outsider()
    problem(promote(outsider, task, source=note_path, text=PART), 404, "not_found")
    assert admin.method("GET", f"/api/tasks/{task.public_id}/memory/promote").status_code == 405
