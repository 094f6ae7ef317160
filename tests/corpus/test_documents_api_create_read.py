"""The document API for scripts and the admin's pages: /api/context/docs (docs/contract.md §2)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from corpus.models import Document, DocumentVersion
from corpus.services import document_create
from tests import factories
from tests.corpus import documents_support
from tests.corpus.documents_support import (
    DETAIL_KEYS,
    DOCS,
    ISO_Z,
    ROW_KEYS,
    UNKNOWN_DOC,
    put,
    sha,
    stored,
)
from tests.helpers import problem

# The shared fixtures, bound here so that pytest finds them for this module's tests.
bob = documents_support.bob
profile = documents_support.profile
repo = documents_support.repo


# --- POST: create ---------------------------------------------------------------------------


def test_create_profile_defaults_to_the_caller(world):
    text = "# Alice\n\nPrefers small PRs — and tests first.\n"
    response = world.person().post(DOCS, {"kind": "profile", "body": text})
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == DETAIL_KEYS
    assert re.fullmatch(r"doc_[0-9a-f]{32}", body["id"])
    assert body["kind"] == "profile"
    assert body["path"] == "profile.md"
    assert body["title"] == "profile.md"
    assert body["version"] == 1
    assert body["body"] == text
    assert "<h1>Alice</h1>" in body["html"]
    assert ISO_Z.match(body["updated_at"])
    assert body["updated_by"] == "alice"
    doc = Document.objects.get(public_id=body["id"])
    assert response["ETag"] == doc.etag
    assert doc.org == world.org and doc.kind == "profile" and doc.owner == world.user
    assert doc.body == text and doc.sha256 == sha(text) and doc.version == 1
    assert doc.updated_by == world.user
    versions = list(DocumentVersion.objects.filter(document=doc))
    assert [(v.version, v.body, v.note, v.created_by) for v in versions] == [
        (1, text, "created", world.user)
    ]


def test_create_profile_of_another_member_by_username(world, bob):
    response = world.person().post(
        DOCS, {"kind": "profile", "owner": "bob", "title": "Bob's habits", "body": "Tabs."}
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["path"], body["title"], body["updated_by"]) == (
        "profile.md",
        "Bob's habits",
        "alice",
    )
    doc = Document.objects.get(public_id=body["id"])
    assert doc.owner == bob and doc.updated_by == world.user
    # Alice may still have her own: the scope is the owner, not the author.
    mine = world.person().post(DOCS, {"kind": "profile", "body": "Spaces."})
    assert mine.status_code == 201, mine.content
    assert Document.objects.get(public_id=mine.json()["id"]).owner == world.user


@pytest.mark.parametrize("owner", ["mallory", "nobody"])
def test_create_profile_of_non_member_or_unknown_user_is_400(world, owner):
    before = stored()
    response = world.person().post(DOCS, {"kind": "profile", "owner": owner, "body": "x"})
    body = problem(response, 400, "validation_error")
    assert "owner" in body["errors"]
    assert stored() == before
    assert not Document.objects.exists()


def test_create_project_and_repo_documents(world, repo):
    person = world.person()
    response = person.post(
        DOCS, {"kind": "project", "project": repo.project.slug, "body": "# Project\n"}
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["kind"], body["path"], body["version"]) == ("project", "project.md", 1)
    assert response["ETag"] == Document.objects.get(public_id=body["id"]).etag
    project_doc = Document.objects.get(public_id=body["id"])
    assert project_doc.project == repo.project and project_doc.repo is None

    response = person.post(
        DOCS, {"kind": "repo", "repo": "acme/widgets", "title": "Widgets", "body": "# Repo\n"}
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["kind"], body["path"], body["title"]) == ("repo", "repo.md", "Widgets")
    repo_doc = Document.objects.get(public_id=body["id"])
    assert repo_doc.repo == repo and repo_doc.org == world.org
    assert DocumentVersion.objects.filter(document=repo_doc).count() == 1


def test_create_project_or_repo_outside_the_org_is_400(world, repo):
    foreign = factories.make_repo(world.outsider_org, "globex/secret")
    person = world.person()
    cases = [
        ({"kind": "project", "body": "x"}, "project"),
        ({"kind": "project", "project": "nope", "body": "x"}, "project"),
        ({"kind": "project", "project": foreign.project.slug, "body": "x"}, "project"),
        ({"kind": "repo", "body": "x"}, "repo"),
        ({"kind": "repo", "repo": "acme/nope", "body": "x"}, "repo"),
        ({"kind": "repo", "repo": "globex/secret", "body": "x"}, "repo"),
    ]
    for data, field in cases:
        body = problem(person.post(DOCS, data), 400, "validation_error")
        assert field in body["errors"], (data, body)
    assert not Document.objects.exists()
    assert not DocumentVersion.objects.exists()


def test_same_scope_twice_is_409_document_exists(world, repo, profile):
    person = world.person()
    before = stored()
    problem(person.post(DOCS, {"kind": "profile", "body": "again"}), 409, "document_exists")
    problem(
        person.post(DOCS, {"kind": "profile", "owner": "alice", "body": "again"}),
        409,
        "document_exists",
    )
    assert stored() == before
    assert Document.objects.get(public_id=profile.json()["id"]).body == "# Alice\n\nSmall PRs.\n"

    data = {"kind": "project", "project": repo.project.slug, "body": "one"}
    assert person.post(DOCS, data).status_code == 201
    problem(person.post(DOCS, {**data, "body": "two"}), 409, "document_exists")
    assert list(Document.objects.filter(kind="project").values_list("body", flat=True)) == ["one"]
    assert DocumentVersion.objects.count() == 2


@pytest.mark.parametrize("kind", ["task", "working", "memory", "bogus"])
def test_system_kinds_cannot_be_created(world, repo, kind):
    data = {"kind": kind, "project": repo.project.slug, "repo": repo.full_name, "body": "x"}
    body = problem(world.person().post(DOCS, data), 400, "validation_error")
    assert "kind" in body["errors"]
    assert not Document.objects.exists()


def test_create_validation_errors_are_400(world):
    person = world.person()

    def errors(data: Any) -> dict[str, list[str]]:
        return problem(person.post(DOCS, data), 400, "validation_error")["errors"]

    assert errors({"kind": 7, "body": "x"})["kind"] == ["Must be a string."]
    assert "kind" in errors({"body": "x"})
    assert "body" in errors({"kind": "profile"})
    assert errors({"kind": "profile", "body": 5})["body"] == ["Must be a string."]
    assert errors({"kind": "profile", "body": None})["body"]
    assert errors({"kind": "profile", "body": "x", "title": ["t"]})["title"] == [
        "Must be a string."
    ]
    assert errors({"kind": "profile", "body": "x", "owner": 3})["owner"] == ["Must be a string."]
    assert errors({"kind": "profile", "body": "x", "title": "t" * 201})["title"]
    assert errors({"kind": "profile", "body": "x", "path": "evil.md"})["path"] == ["Unknown field."]
    problem(person.post(DOCS, raw="{nope"), 400, "malformed_json")
    problem(person.post(DOCS, raw='["profile"]'), 400, "validation_error")
    problem(
        person.post(
            DOCS, raw="kind=profile&body=x", content_type="application/x-www-form-urlencoded"
        ),
        415,
        "unsupported_media_type",
    )
    assert not Document.objects.exists()


# --- GET: list and one ----------------------------------------------------------------------


def test_list_filters_by_kind_project_and_repo(world, repo):
    other = factories.make_repo(world.org, "acme/gadgets")
    org, user = world.org, world.user
    profile = document_create(org=org, kind="profile", body="p", owner=user, user=user)
    project_a = document_create(org=org, kind="project", body="a", project=repo.project)
    repo_a = document_create(org=org, kind="repo", body="ra", repo=repo)
    project_b = document_create(org=org, kind="project", body="b", project=other.project)
    repo_b = document_create(org=org, kind="repo", body="rb", repo=other)
    task = world.task(repo=repo)
    task_doc = Document.objects.get(kind="task", task_ref=task.public_id)
    foreign = factories.make_repo(world.outsider_org, "globex/widgets")
    document_create(org=world.outsider_org, kind="repo", body="secret", repo=foreign)
    person = world.person()

    def ids(query: str = "") -> list[str]:
        response = person.get(f"{DOCS}{query}")
        assert response.status_code == 200, response.content
        page = response.json()
        assert set(page) == {"data", "next_cursor"} and page["next_cursor"] is None
        for row in page["data"]:
            assert set(row) == ROW_KEYS
        return sorted(row["id"] for row in page["data"])

    everything = [profile, project_a, repo_a, project_b, repo_b, task_doc]
    assert ids() == sorted(d.public_id for d in everything)
    assert ids("?kind=project") == sorted([project_a.public_id, project_b.public_id])
    assert ids("?kind=task") == [task_doc.public_id]
    assert ids(f"?project={repo.project.slug}") == [project_a.public_id]
    assert ids("?repo=acme/widgets") == [repo_a.public_id]
    assert ids("?kind=project&repo=acme/widgets") == []
    assert ids("?repo=globex/widgets") == []

    row = next(r for r in person.get(f"{DOCS}?kind=profile").json()["data"])
    assert row == {
        "id": profile.public_id,
        "kind": "profile",
        "path": "profile.md",
        "title": "profile.md",
        "version": 1,
        "bytes": 1,
        "sha256": sha("p"),
        "updated_at": row["updated_at"],
        "updated_by": "alice",
    }
    assert ISO_Z.match(row["updated_at"])
    body = problem(person.get(f"{DOCS}?kind=bogus"), 400, "validation_error")
    assert "kind" in body["errors"]


def test_list_is_paginated_with_an_opaque_cursor(world):
    for n in range(5):
        member = factories.make_user(world.org, f"member{n}")
        document_create(org=world.org, kind="profile", body=f"#{n}", owner=member)
    person = world.person()
    seen: list[str] = []
    sizes = []
    url = f"{DOCS}?limit=2"
    while True:
        response = person.get(url)
        assert response.status_code == 200, response.content
        page = response.json()
        sizes.append(len(page["data"]))
        seen += [row["id"] for row in page["data"]]
        if page["next_cursor"] is None:
            break
        url = f"{DOCS}?limit=2&cursor={page['next_cursor']}"
    assert sizes == [2, 2, 1]
    assert sorted(seen) == sorted(Document.objects.values_list("public_id", flat=True))
    assert len(set(seen)) == 5
    for query in ("?limit=0", "?limit=201", "?limit=x", "?cursor=garbage"):
        problem(person.get(f"{DOCS}{query}"), 400, "validation_error")


def test_get_one_returns_the_document_and_its_etag(world, profile):
    doc_id = profile.json()["id"]
    response = world.person().get(f"{DOCS}/{doc_id}")
    assert response.status_code == 200
    assert response.json() == profile.json()
    assert response["ETag"] == profile["ETag"] == Document.objects.get(public_id=doc_id).etag


def test_get_one_of_another_org_unknown_or_malformed_is_404(world, profile):
    doc_id = profile.json()["id"]
    problem(world.outsider().get(f"{DOCS}/{doc_id}"), 404, "not_found")
    foreign = document_create(
        org=world.outsider_org, kind="profile", body="m", owner=world.outsider_user
    )
    person = world.person()
    for ref in (foreign.public_id, UNKNOWN_DOC, "doc_nothex", "profile.md", doc_id.upper()):
        problem(person.get(f"{DOCS}/{ref}"), 404, "not_found")
    assert {d["id"] for d in world.outsider().get(DOCS).json()["data"]} == {foreign.public_id}


def test_html_is_sanitized_and_the_body_kept_verbatim(world):
    text = (
        "# Notes\n\n<script>alert(1)</script>\n\n[x](javascript:alert(1))\n\n"
        '<img src="x" onerror="alert(2)">\n\n[ok](https://example.com)\n'
    )
    response = world.person().post(DOCS, {"kind": "profile", "body": text})
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["body"] == text
    html = body["html"]
    assert "<script" not in html.lower()
    assert "javascript:" not in html.lower()
    assert "onerror" not in html.lower()
    assert "<h1>Notes</h1>" in html
    assert 'href="https://example.com"' in html
    assert Document.objects.get(public_id=body["id"]).body == text

    edited = put(
        world.person(),
        body["id"],
        {"body": '<svg onload="alert(3)"></svg>[y](JaVaScRiPt:alert(4))'},
    )
    assert edited.status_code == 200, edited.content
    assert "onload" not in edited.json()["html"].lower()
    assert "javascript:" not in edited.json()["html"].lower()
    assert "<svg" not in edited.json()["html"].lower()
