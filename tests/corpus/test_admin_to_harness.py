"""The corpus issue's "done when", end to end: an admin edits and restores the project
document in the admin, and a harness reading the task's context sees each new version
with a new ETag. Also the XSS vector suite through the admin's preview endpoint."""

from __future__ import annotations

import pytest
from django.test import Client

from corpus.models import Document
from corpus.services import document_create
from tests.corpus.html_safety import problems
from tests.corpus.xss_vectors import VECTORS
from tests.helpers import Harness

PREVIEW = "/admin/corpus/document/preview/"


@pytest.fixture
def staff(world):
    world.user.is_staff = world.user.is_superuser = True
    world.user.save()
    client = Client()
    client.force_login(world.user)
    return client


def project_doc_meta(harness: Harness, task_id: str) -> dict:
    response = harness.get(f"/api/harness/context?task_id={task_id}&slices=project")
    assert response.status_code == 200
    [doc] = response.json()["slices"][0]["docs"]
    return doc


def fetch(harness: Harness, task_id: str, doc_id: str):
    return harness.get(f"/api/harness/context/doc/{doc_id}?task_id={task_id}")


def test_admin_edit_and_restore_reach_the_harness_with_new_etags(world, staff, task, harness):
    document = document_create(
        org=world.org, kind="project", project=task.project, body="# Stack\n\nDjango 4\n"
    )
    v1 = fetch(harness, task.public_id, document.public_id)
    assert v1.status_code == 200 and b"Django 4" in v1.content

    change = f"/admin/corpus/document/{document.pk}/change/"
    page = staff.get(change)
    etag = page.context["adminform"].form["etag"].value()
    response = staff.post(
        change, {"title": "Stack", "body": "# Stack\n\nDjango 5.2\n", "etag": etag}
    )
    assert response.status_code == 302
    v2 = fetch(harness, task.public_id, document.public_id)
    assert b"Django 5.2" in v2.content
    assert v2["ETag"] != v1["ETag"]
    assert project_doc_meta(harness, task.public_id)["version"] == 2
    not_modified = harness.get(
        f"/api/harness/context/doc/{document.public_id}?task_id={task.public_id}",
        HTTP_IF_NONE_MATCH=v1["ETag"],
    )
    assert not_modified.status_code == 200  # the old ETag no longer matches

    document.refresh_from_db()
    restore = f"/admin/corpus/document/{document.pk}/versions/1/restore/"
    assert staff.post(restore, {"etag": document.etag}).status_code == 302
    v3 = fetch(harness, task.public_id, document.public_id)
    assert b"Django 4" in v3.content
    assert v3["ETag"] not in {v1["ETag"], v2["ETag"]}
    meta = project_doc_meta(harness, task.public_id)
    assert meta["version"] == 3
    assert Document.objects.get(pk=document.pk).versions.count() == 3


@pytest.mark.parametrize("source", [v for _, v in VECTORS], ids=[n for n, _ in VECTORS])
def test_xss_vectors_through_the_admin_preview(staff, source):
    response = staff.post(PREVIEW, {"text": source})
    assert response.status_code == 200
    assert problems(response.json()["html"]) == []
