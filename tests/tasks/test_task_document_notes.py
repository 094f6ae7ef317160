"""No human edit is lost (CONTRACT.md §7): the task document's derived part is refused on
PUT with 409 ``derived_document``; its ``## Notes`` section is the user's and survives
every regeneration (interrupt, answer, withdrawal, result…)."""

from __future__ import annotations

import json
from typing import Any

from corpus.models import Document, DocumentVersion
from tests.helpers import problem


def task_doc(task: Any) -> Document:
    return Document.objects.get(kind="task", task_ref=task.public_id)


def put(world: Any, doc: Document, body: str, **headers: Any) -> Any:
    return world.person().method(
        "PUT",
        f"/api/context/docs/{doc.public_id}",
        data=json.dumps({"body": body}),
        content_type="application/json",
        **headers,
    )


def test_a_new_task_document_ends_with_an_empty_notes_section(world, task):
    doc = task_doc(task)
    derived, notes = doc.body.split("\n## Notes\n", 1)
    assert derived.startswith(f"# {task.title}")
    assert "The server rewrites everything above this heading" in notes


def test_an_admin_note_survives_an_interrupt_and_an_answer(world, task, harness, claimed):
    doc = task_doc(task)
    notes = "Talk to Dana before touching the billing code.\n\n- staging is flaky on Mondays\n"
    body = doc.body.split("## Notes")[0] + "## Notes\n\n" + notes
    response = put(world, doc, body, HTTP_IF_MATCH=doc.etag)
    assert response.status_code == 200, response.content
    doc.refresh_from_db()
    assert (doc.version, doc.body) == (2, body)

    response = harness.interrupt(task.public_id, claimed["run_id"], question="Which DB?")
    assert response.status_code == 200, response.content
    doc.refresh_from_db()
    assert doc.version == 3
    assert "Which DB?" in doc.body and doc.body.endswith("## Notes\n\n" + notes)

    response = world.person().post(f"/api/tasks/{task.public_id}/answer", {"answer": "Postgres"})
    assert response.status_code == 200, response.content
    doc.refresh_from_db()
    assert doc.version == 4
    assert "Postgres" in doc.body and doc.body.endswith("## Notes\n\n" + notes)
    # The harness reads the note in its next context.
    fetched = harness.get(
        f"/api/harness/context/doc/{doc.public_id}?task_id={task.public_id}"
    ).content.decode()
    assert "Talk to Dana before touching the billing code." in fetched

    # And the result, with a working note, leaves it too.
    response = harness.result(task.public_id, claimed["run_id"], "no_changes")
    assert response.status_code == 200, response.content
    doc.refresh_from_db()
    assert doc.body.endswith("## Notes\n\n" + notes)


def test_an_edit_of_the_derived_part_is_409_and_stores_nothing(world, task):
    doc = task_doc(task)
    before = (doc.version, doc.body)
    edited = doc.body.replace(f"# {task.title}", "# Another title")
    body = problem(put(world, doc, edited), 409, "derived_document")
    assert f"PATCH /api/tasks/{task.public_id}" in body["detail"]
    assert "admin's task form" in body["detail"]
    assert body["edit_task"] == {"method": "PATCH", "url": f"/api/tasks/{task.public_id}"}
    assert body["task_id"] == task.public_id
    doc.refresh_from_db()
    assert (doc.version, doc.body) == before
    assert DocumentVersion.objects.filter(document=doc).count() == 1


def test_removing_the_notes_heading_or_the_title_is_409(world, task):
    doc = task_doc(task)
    problem(put(world, doc, doc.body.split("## Notes")[0]), 409, "derived_document")
    response = world.person().method(
        "PUT",
        f"/api/context/docs/{doc.public_id}",
        data=json.dumps({"body": doc.body, "title": "Renamed"}),
        content_type="application/json",
    )
    problem(response, 409, "derived_document")
    doc.refresh_from_db()
    assert doc.version == 1


def test_a_prompt_with_its_own_notes_heading_cannot_hide_the_users_notes(world, harness):
    task = world.task(prompt="Fix it.\n\n## Notes\n\nfrom the prompt")
    doc = task_doc(task)
    derived, _ = doc.body.split("\n## Notes\n", 1)
    assert "\\## Notes" in derived and "from the prompt" in derived
    body = derived + "\n## Notes\n\nmine\n"
    assert put(world, doc, body).status_code == 200
    claim = harness.claim(task.public_id).json()
    harness.interrupt(task.public_id, claim["run_id"], question="Sure?")
    doc.refresh_from_db()
    assert doc.body.endswith("\n## Notes\n\nmine\n")


def test_other_documents_are_not_guarded(world):
    response = world.person().post(
        "/api/context/docs", {"kind": "profile", "body": "# Me\n", "title": "Me"}
    )
    assert response.status_code == 201, response.content
    doc = Document.objects.get(public_id=response.json()["id"])
    assert put(world, doc, "# Someone else\n").status_code == 200
