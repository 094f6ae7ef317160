"""The document API for scripts and the admin's pages: /api/context/docs (docs/contract.md §2)."""

from __future__ import annotations

from corpus.models import Document, DocumentVersion
from tests import factories
from tests.corpus import documents_support
from tests.corpus.documents_support import DETAIL_KEYS, DOCS, ISO_Z, UNKNOWN_DOC, put, sha, stored
from tests.helpers import Caller, problem

# The shared fixtures, bound here so that pytest finds them for this module's tests.
bob = documents_support.bob
profile = documents_support.profile


# --- PUT: new versions and lost updates ------------------------------------------------------


def test_put_same_body_stores_no_new_version(world, profile):
    doc_id = profile.json()["id"]
    before = stored()
    response = put(world.person(), doc_id, {"body": "# Alice\n\nSmall PRs.\n"})
    assert response.status_code == 200, response.content
    assert response.json()["version"] == 1
    assert response["ETag"] == profile["ETag"]
    assert stored() == before
    # Sending the unchanged title is no change either.
    response = put(
        world.person(), doc_id, {"body": "# Alice\n\nSmall PRs.\n", "title": "profile.md"}
    )
    assert response.json()["version"] == 1
    assert stored() == before


def test_put_changed_body_or_title_stores_a_new_version(world, bob, profile):
    doc_id = profile.json()["id"]
    bob_caller = Caller(factories.make_token(bob))
    response = put(bob_caller, doc_id, {"body": "# Alice\n\nTiny PRs.\n"})
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == DETAIL_KEYS
    assert (body["version"], body["body"], body["updated_by"]) == (
        2,
        "# Alice\n\nTiny PRs.\n",
        "bob",
    )
    assert response["ETag"] != profile["ETag"]
    doc = Document.objects.get(public_id=doc_id)
    assert response["ETag"] == doc.etag
    assert (doc.version, doc.body, doc.sha256, doc.updated_by) == (
        2,
        "# Alice\n\nTiny PRs.\n",
        sha("# Alice\n\nTiny PRs.\n"),
        bob,
    )

    response = put(bob_caller, doc_id, {"body": "# Alice\n\nTiny PRs.\n", "title": "Alice"})
    assert response.status_code == 200
    assert (response.json()["version"], response.json()["title"]) == (3, "Alice")
    versions = DocumentVersion.objects.filter(document=doc).order_by("version")
    assert [(v.version, v.title) for v in versions] == [
        (1, "profile.md"),
        (2, "profile.md"),
        (3, "Alice"),
    ]


def test_if_match_with_the_current_etag_is_200_with_a_new_etag(world, profile):
    doc_id = profile.json()["id"]
    response = put(world.person(), doc_id, {"body": "v2"}, HTTP_IF_MATCH=profile["ETag"])
    assert response.status_code == 200, response.content
    assert response.json()["version"] == 2
    assert response["ETag"] != profile["ETag"]
    assert response["ETag"] == Document.objects.get(public_id=doc_id).etag
    again = put(world.person(), doc_id, {"body": "v3"}, HTTP_IF_MATCH=response["ETag"])
    assert again.status_code == 200 and again.json()["version"] == 3


def test_lost_update_second_editor_with_stale_etag_is_412(world, bob, profile):
    doc_id = profile.json()["id"]
    alice, bob_caller = world.person(), Caller(factories.make_token(bob))
    alice_etag = alice.get(f"{DOCS}/{doc_id}")["ETag"]
    bob_etag = bob_caller.get(f"{DOCS}/{doc_id}")["ETag"]
    assert alice_etag == bob_etag

    first = put(alice, doc_id, {"body": "Alice's careful edit."}, HTTP_IF_MATCH=alice_etag)
    assert first.status_code == 200, first.content
    before = stored()

    second = put(bob_caller, doc_id, {"body": "Bob's blind overwrite."}, HTTP_IF_MATCH=bob_etag)
    body = problem(second, 412, "precondition_failed")
    assert body["current_version"] == 2
    assert body["etag"] == first["ETag"]
    assert stored() == before
    doc = Document.objects.get(public_id=doc_id)
    assert (doc.body, doc.version, doc.updated_by) == ("Alice's careful edit.", 2, world.user)
    assert DocumentVersion.objects.filter(document=doc).count() == 2
    assert not DocumentVersion.objects.filter(body="Bob's blind overwrite.").exists()
    shown = alice.get(f"{DOCS}/{doc_id}").json()
    assert (shown["body"], shown["version"]) == ("Alice's careful edit.", 2)

    # Bob reloads, merges and saves with the fresh ETag.
    merged = put(bob_caller, doc_id, {"body": "Both edits."}, HTTP_IF_MATCH=first["ETag"])
    assert merged.status_code == 200 and merged.json()["version"] == 3


def test_if_match_garbage_is_412_and_star_is_accepted(world, profile):
    doc_id = profile.json()["id"]
    before = stored()
    problem(
        put(world.person(), doc_id, {"body": "x"}, HTTP_IF_MATCH='"nope"'),
        412,
        "precondition_failed",
    )
    assert stored() == before
    response = put(world.person(), doc_id, {"body": "star"}, HTTP_IF_MATCH="*")
    assert response.status_code == 200, response.content
    assert Document.objects.get(public_id=doc_id).body == "star"


def test_put_validation_errors_are_400_and_change_nothing(world, profile):
    doc_id = profile.json()["id"]
    person = world.person()
    before = stored()
    assert "body" in problem(put(person, doc_id, {}), 400, "validation_error")["errors"]
    body = problem(put(person, doc_id, {"body": 5}), 400, "validation_error")
    assert body["errors"]["body"] == ["Must be a string."]
    body = problem(put(person, doc_id, {"body": "x", "kind": "repo"}), 400, "validation_error")
    assert body["errors"]["kind"] == ["Unknown field."]
    body = problem(put(person, doc_id, {"body": "x", "title": 1}), 400, "validation_error")
    assert body["errors"]["title"] == ["Must be a string."]
    problem(
        person.method("put", f"{DOCS}/{doc_id}", data="{nope", content_type="application/json"),
        400,
        "malformed_json",
    )
    problem(
        person.method("put", f"{DOCS}/{doc_id}", data="body=x", content_type="text/plain"),
        415,
        "unsupported_media_type",
    )
    assert stored() == before


def test_put_of_another_orgs_or_unknown_document_is_404(world, profile):
    doc_id = profile.json()["id"]
    before = stored()
    problem(put(world.outsider(), doc_id, {"body": "pwned"}), 404, "not_found")
    problem(put(world.person(), UNKNOWN_DOC, {"body": "x"}), 404, "not_found")
    problem(put(world.person(), "doc_nothex", {"body": "x"}), 404, "not_found")
    assert stored() == before


# --- versions ------------------------------------------------------------------------------


def test_versions_list_oldest_first_with_notes(world, bob, profile):
    doc_id = profile.json()["id"]
    assert put(world.person(), doc_id, {"body": "two"}).status_code == 200
    assert put(Caller(factories.make_token(bob)), doc_id, {"body": "three"}).status_code == 200
    url = f"{DOCS}/{doc_id}/versions"
    response = world.person().get(url)
    assert response.status_code == 200, response.content
    page = response.json()
    assert page["next_cursor"] is None
    rows = page["data"]
    assert [r["version"] for r in rows] == [1, 2, 3]
    assert [r["body"] for r in rows] == ["# Alice\n\nSmall PRs.\n", "two", "three"]
    assert [r["note"] for r in rows] == ["created", "", ""]
    assert [r["created_by"] for r in rows] == ["alice", "alice", "bob"]
    assert set(rows[0]) == {
        "version",
        "title",
        "body",
        "sha256",
        "bytes",
        "note",
        "created_at",
        "created_by",
    }
    assert rows[2]["sha256"] == sha("three") and rows[2]["bytes"] == 5
    assert all(ISO_Z.match(r["created_at"]) for r in rows)

    first = world.person().get(f"{url}?limit=2").json()
    assert [r["version"] for r in first["data"]] == [1, 2] and first["next_cursor"]
    rest = world.person().get(f"{url}?limit=2&cursor={first['next_cursor']}").json()
    assert [r["version"] for r in rest["data"]] == [3] and rest["next_cursor"] is None

    problem(world.outsider().get(url), 404, "not_found")
    problem(world.person().get(f"{DOCS}/{UNKNOWN_DOC}/versions"), 404, "not_found")
    problem(world.person().get(f"{url}?limit=0"), 400, "validation_error")


# --- 401, 405 ------------------------------------------------------------------------------


def test_auth_failures_are_401_and_store_nothing(world, profile):
    doc_id = profile.json()["id"]
    before = stored()
    for caller in (Caller(None), Caller(world.key), Caller("eth_pat_wrong")):
        problem(caller.get(DOCS), 401, "not_authenticated")
        problem(
            caller.post(DOCS, {"kind": "profile", "owner": "bob", "body": "x"}),
            401,
            "not_authenticated",
        )
        problem(caller.get(f"{DOCS}/{doc_id}"), 401, "not_authenticated")
        problem(put(caller, doc_id, {"body": "x"}), 401, "not_authenticated")
        problem(caller.get(f"{DOCS}/{doc_id}/versions"), 401, "not_authenticated")
    assert stored() == before


def test_unsupported_methods_are_405(world, profile):
    doc_id = profile.json()["id"]
    person = world.person()
    before = stored()
    problem(person.method("delete", f"{DOCS}/{doc_id}"), 405, "method_not_allowed")
    problem(person.method("delete", DOCS), 405, "method_not_allowed")
    problem(person.post(f"{DOCS}/{doc_id}", {"body": "x"}), 405, "method_not_allowed")
    problem(
        person.method("patch", f"{DOCS}/{doc_id}", data="{}", content_type="application/json"),
        405,
        "method_not_allowed",
    )
    problem(person.post(f"{DOCS}/{doc_id}/versions", {}), 405, "method_not_allowed")
    assert stored() == before
    assert Document.objects.filter(public_id=doc_id).exists()
