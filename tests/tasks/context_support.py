"""Helpers and fixtures shared by the context API tests (test_context_api_*.py)."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import pytest

from corpus.models import Document
from corpus.services import document_create
from tasks.models import Task
from tests import factories

CONTEXT = "/api/harness/context"
SLICES = ["profile", "project", "repo", "task", "working"]
META_KEYS = {"id", "path", "title", "bytes", "sha256", "version", "updated_at"}
ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
UNKNOWN_TASK = "task_" + "0" * 32


def doc_url(ref: str, task_id: str) -> str:
    return f"{CONTEXT}/doc/{ref}?task_id={task_id}"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def slices(response: Any) -> dict[str, list[dict[str, Any]]]:
    assert response.status_code == 200, response.content
    return {item["name"]: item["docs"] for item in response.json()["slices"]}


def paths(docs: list[dict[str, Any]]) -> list[str]:
    return [d["path"] for d in docs]


def task_doc(task: Task) -> Document:
    return Document.objects.get(org=task.org, kind="task", task_ref=task.public_id)


@pytest.fixture
def scoped(world, task) -> dict[str, Document]:
    """The documents of ``task``'s scope beside others that are not: by name."""
    org, alice = world.org, world.user
    bob = factories.make_user(org, "bob")
    elsewhere = factories.make_repo(org, "acme/elsewhere")
    foreign = factories.make_repo(world.outsider_org, "globex/widgets")
    return {
        "profile": document_create(
            org=org, kind="profile", owner=alice, body="Préfère les petites PR.\n", user=alice
        ),
        "project": document_create(
            org=org, kind="project", project=task.project, title="Project", body="# P\n"
        ),
        "repo": document_create(org=org, kind="repo", repo=task.repo, body="# R\n"),
        "bob_profile": document_create(org=org, kind="profile", owner=bob, body="Bob.\n"),
        "other_project": document_create(
            org=org, kind="project", project=elsewhere.project, body="other project\n"
        ),
        "other_repo": document_create(org=org, kind="repo", repo=elsewhere, body="other repo\n"),
        "foreign_profile": document_create(
            org=world.outsider_org, kind="profile", owner=world.outsider_user, body="globex\n"
        ),
        "foreign_repo": document_create(
            org=world.outsider_org, kind="repo", repo=foreign, body="globex repo\n"
        ),
    }
