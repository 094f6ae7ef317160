"""Tasks are created and edited in the admin through the API's services: the same
validation, the same timeline and activity events, the same task document (its
``## Notes`` kept)."""

from __future__ import annotations

import pytest
from django.test import Client

from corpus.models import Document
from tasks.models import Event, Task


@pytest.fixture
def staff(world):
    world.user.is_staff = world.user.is_superuser = True
    world.user.save()
    client = Client()
    client.force_login(world.user)
    return client


def add_form(world, repo, **over):
    data = {
        "org": world.org.pk,
        "owner": world.user.pk,
        "project": repo.project.pk,
        "repo": repo.pk,
        "title": "Add a health check",
        "prompt": "GET /healthz answers 200.",
        "definition_of_done": "GET /healthz answers 200\n\nA test covers it\n",
        "branch_scope": "ether/*",
    }
    data.update(over)
    return data


def test_admin_creates_a_task_through_the_api_service(world, staff, task):
    repo = task.repo
    response = staff.post("/admin/tasks/task/add/", add_form(world, repo))
    assert response.status_code == 302, response.content.decode()[:3000]
    made = Task.objects.exclude(pk=task.pk).get()
    assert (made.title, made.status, made.org, made.owner) == (
        "Add a health check",
        "ready",
        world.org,
        world.user,
    )
    assert made.definition_of_done == ["GET /healthz answers 200", "A test covers it"]
    # What task_create does: a "created" timeline entry, a grid row event, the document.
    kinds = [e.payload.get("kind") for e in Event.objects.filter(task=made, name="task.timeline")]
    assert kinds == ["created"]
    assert Event.objects.filter(task=made, name="activity.list_updated").exists()
    doc = Document.objects.get(kind="task", task_ref=made.public_id)
    assert "- [ ] A test covers it" in doc.body and "\n## Notes\n" in doc.body
    # And the product API sees it like any task.
    assert world.person().get(f"/api/tasks/{made.public_id}").status_code == 200


def test_admin_add_is_validated_like_the_api(world, staff, task):
    response = staff.post(
        "/admin/tasks/task/add/", add_form(world, task.repo, branch_scope="has space")
    )
    assert response.status_code == 200
    assert "Must be a branch glob without spaces" in response.content.decode()
    assert Task.objects.count() == 1


def test_admin_edit_regenerates_the_document_and_keeps_its_notes(world, staff, task):
    doc = Document.objects.get(kind="task", task_ref=task.public_id)
    body = doc.body.split("## Notes")[0] + "## Notes\n\nAsk Dana first.\n"
    put = world.person().method(
        "PUT",
        f"/api/context/docs/{doc.public_id}",
        data=f'{{"body": {__import__("json").dumps(body)}}}',
        content_type="application/json",
    )
    assert put.status_code == 200, put.content
    response = staff.post(
        f"/admin/tasks/task/{task.pk}/change/",
        {
            "title": "Renamed in the admin",
            "prompt": task.prompt,
            "definition_of_done": "\n".join([*task.definition_of_done, "Docs updated"]),
            "branch_scope": task.branch_scope,
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    task.refresh_from_db()
    assert task.title == "Renamed in the admin"
    assert task.definition_of_done[-1] == "Docs updated"
    doc.refresh_from_db()
    assert doc.body.startswith("# Renamed in the admin")
    assert "- [ ] Docs updated" in doc.body
    assert doc.body.endswith("## Notes\n\nAsk Dana first.\n")
    edited = Event.objects.filter(task=task, name="task.timeline").last()
    assert edited.payload["kind"] == "edited"
    assert edited.payload["changed"] == ["definition_of_done", "title"]


def test_admin_cannot_delete_a_task(world, staff, task):
    response = staff.post(f"/admin/tasks/task/{task.pk}/delete/", {"post": "yes"})
    assert response.status_code == 403
    assert Task.objects.filter(pk=task.pk).exists()
