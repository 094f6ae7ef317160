"""The admin of documents, tools and skills: list, editor, stale-edit guard, preview,
versions with diff and restore."""

from __future__ import annotations

import json

from django.test import Client
from django.utils.html import escape

from corpus.diffing import diff_texts
from corpus.models import DocumentVersion, Skill, Tool
from corpus.services import document_save
from tests.corpus import admin_documents_support
from tests.corpus.admin_documents_support import (
    BODY,
    PREVIEW,
    messages_of,
    restore_url,
    versions_url,
)

# The shared fixtures, bound here so that pytest finds them for this module's tests.
bob = admin_documents_support.bob
doc = admin_documents_support.doc
org = admin_documents_support.org


# --- Versions, diff, restore --------------------------------------------------------------


def test_versions_page_lists_every_version(admin_client, doc, bob):
    document_save(document=doc, body=BODY + "more\n", user=bob, note="bob's note")
    response = admin_client.get(versions_url(doc))
    assert response.status_code == 200
    versions = response.context["versions"]
    assert [v.version for v in versions] == [2, 1]
    assert [v.size for v in versions] == [len(BODY) + 5, len(BODY)]
    assert [str(v.created_by) for v in versions] == ["bob", "admin"]
    page = response.content.decode()
    assert "bob&#x27;s note" in page and "created" in page
    # Only the old version can be restored; the current one is what it would become.
    assert restore_url(doc, 1) in page and restore_url(doc, 2) not in page


def test_versions_page_counts_size_in_bytes(admin_client, doc, admin_user):
    document_save(document=doc, body="é€", user=admin_user)
    versions = admin_client.get(versions_url(doc)).context["versions"]
    assert versions[0].size == len("é€".encode())


def test_diff_between_two_versions_shows_the_changed_lines_escaped(admin_client, doc, bob):
    document_save(
        document=doc,
        body="# Plan\n\n<script>alert('owned')</script>\nkept line\n",
        title="<img src=x onerror=alert(3)>",
        user=bob,
    )
    document_save(document=doc, body="third\n", user=bob)
    response = admin_client.get(versions_url(doc), {"a": 1, "b": 2})
    assert response.status_code == 200
    page = response.content.decode()
    diff = page[page.index('id="diff"') :]
    # Word level: only the changed words are marked within the changed line.
    assert "<del>first line</del>" in diff or "<del>first</del>" in diff
    assert "&lt;script&gt;alert(&#x27;owned&#x27;)&lt;/script&gt;" in diff
    assert 'class="diff-row diff-row--change"' in diff
    assert "<script>alert" not in page
    assert "<img src=x" not in page
    assert escape("<img src=x onerror=alert(3)>") in page


def test_diff_defaults_to_the_latest_change(admin_client, doc, admin_user):
    document_save(document=doc, body="second body\n", user=admin_user)
    response = admin_client.get(versions_url(doc))
    assert (response.context["old"].version, response.context["new"].version) == (1, 2)
    assert "second" in response.content.decode()


def test_diff_with_an_unknown_version_shows_no_diff(admin_client, doc):
    response = admin_client.get(versions_url(doc), {"a": 1, "b": 99})
    assert response.status_code == 200
    assert response.context["diff"] is None
    assert "Pick two versions" in response.content.decode()


def test_diff_escapes_every_typed_character(admin_client, doc, admin_user):
    document_save(document=doc, body="<b>\x01 x\n", user=admin_user)
    page = admin_client.get(versions_url(doc)).content.decode()
    assert "&lt;b&gt;" in page and "<b>" not in page
    table = diff_texts("a\n", "\x00+<i>\x01\n", old_label="<v1>", new_label="v2").table
    assert "&lt;i&gt;" in table and "<i>" not in table and "&lt;v1&gt;" in table


def test_diff_marks_the_changed_words_and_keeps_long_lines_whole():
    long = "word " * 400
    table = diff_texts(
        f"intro\nthe quick brown fox\n{long}\n",
        f"intro\nthe quick red fox\n{long}tail\n",
        old_label="v1",
        new_label="v2",
    ).table
    assert "the quick <del>brown</del> fox" in table
    assert "the quick <ins>red</ins> fox" in table
    assert "<ins>tail</ins>" in table
    assert long.strip() in table  # never cut at a wrap column: the page wraps it


def test_large_bodies_get_an_escaped_unified_diff(admin_client, doc, admin_user):
    filler = "".join(f"line {n}\n" for n in range(15_000))
    document_save(document=doc, body=filler, user=admin_user)
    document_save(document=doc, body=filler + "<script>alert(9)</script>\n", user=admin_user)
    response = admin_client.get(versions_url(doc), {"a": 2, "b": 3})
    assert response.context["diff"].table is None
    page = response.content.decode()
    assert 'class="diff-unified"' in page
    assert "+&lt;script&gt;alert(9)&lt;/script&gt;" in page and "<script>alert" not in page


def test_staff_without_document_permissions_cannot_see_or_restore(client, doc, bob):
    bob.is_staff = True
    bob.save()
    client.force_login(bob)
    assert client.get(versions_url(doc)).status_code == 403
    assert client.post(restore_url(doc, 1), {"etag": doc.etag}).status_code == 403
    # The preview reveals nothing stored, so any staff member may use it.
    assert client.post(PREVIEW, {"text": "*x*"}).status_code == 200
    doc.refresh_from_db()
    assert doc.version == 1


def test_restore_makes_a_new_version_equal_to_the_old_one(admin_client, admin_user, doc):
    doc = document_save(document=doc, body="changed\n", title="Changed", user=admin_user)
    response = admin_client.post(restore_url(doc, 1), {"etag": doc.etag})
    assert response.status_code == 302
    assert response["Location"] == versions_url(doc)
    assert "Restored version 1 as version 3." in messages_of(response)
    doc.refresh_from_db()
    assert (doc.version, doc.body, doc.title) == (3, BODY, "Project plan")
    restored = DocumentVersion.objects.get(document=doc, version=3)
    assert restored.body == BODY and restored.note == "restored from v1"
    assert restored.created_by == admin_user
    # History is kept: v2 is still there.
    assert DocumentVersion.objects.get(document=doc, version=2).body == "changed\n"


def test_restore_after_someone_elses_save_restores_nothing(admin_client, doc, bob):
    doc = document_save(document=doc, body="changed\n", user=bob)
    opened = doc.etag
    document_save(document=doc, body="bob again\n", user=bob)
    response = admin_client.post(restore_url(doc, 1), {"etag": opened})
    assert response.status_code == 302
    assert any("bob saved version 3" in m for m in messages_of(response))
    doc.refresh_from_db()
    assert (doc.version, doc.body) == (3, "bob again\n")
    assert DocumentVersion.objects.filter(document=doc).count() == 3


def test_restore_of_an_unknown_version_stores_nothing(admin_client, doc):
    response = admin_client.post(restore_url(doc, 7), {"etag": doc.etag})
    assert response.status_code == 302
    assert any("no version 7" in m for m in messages_of(response))
    doc.refresh_from_db()
    assert doc.version == 1


def test_restore_previews_the_version_before_restoring_it(admin_client, doc, admin_user):
    document_save(document=doc, body="# Plan\n\nnew line\n<script>x</script>\n", user=admin_user)
    response = admin_client.get(restore_url(doc, 1))
    assert response.status_code == 200
    page = response.content.decode()
    # Version 1 as the pages will show it, and what restoring it changes.
    assert '<div class="md-editor__preview restore-preview"' in page
    assert "<h1>Plan</h1>" in page and "<p>first line" in page
    assert "<del>new</del>" in page and "<ins>first</ins>" in page
    assert "&lt;script&gt;x&lt;/script&gt;" in page and "<script>x" not in page
    doc.refresh_from_db()
    assert f'name="etag" value="{escape(doc.etag)}"' in page
    assert doc.version == 2  # a preview stores nothing
    assert admin_client.put(restore_url(doc, 1)).status_code == 405


def test_restore_refused_to_anonymous_and_non_staff(client, doc, bob):
    assert client.post(restore_url(doc, 1), {"etag": doc.etag}).status_code == 302
    client.force_login(bob)
    response = client.post(restore_url(doc, 1), {"etag": doc.etag})
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    assert client.get(versions_url(doc)).status_code == 302
    doc.refresh_from_db()
    assert doc.version == 1


def test_restore_needs_the_csrf_token(admin_user, doc):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(admin_user)
    assert browser.post(restore_url(doc, 1), {"etag": doc.etag}).status_code == 403
    doc.refresh_from_db()
    assert doc.version == 1


def test_versions_of_a_missing_document_redirect_to_the_list(admin_client, db):
    response = admin_client.get("/admin/corpus/document/999999/versions/")
    assert response.status_code == 302 and response["Location"] == "/admin/"


# --- Tools and skills ---------------------------------------------------------------------


def test_tool_input_schema_must_be_a_json_object(admin_client, org):
    base = {"org": org.pk, "name": "run_tests", "description": "Runs the test suite."}
    response = admin_client.post("/admin/corpus/tool/add/", {**base, "input_schema": "[1, 2]"})
    assert response.status_code == 200
    assert "The input schema must be a JSON object" in response.content.decode()
    response = admin_client.post("/admin/corpus/tool/add/", {**base, "input_schema": "{nope"})
    assert response.status_code == 200
    assert not Tool.objects.exists()
    schema = {"type": "object", "properties": {"path": {"type": "string"}}}
    response = admin_client.post(
        "/admin/corpus/tool/add/", {**base, "input_schema": json.dumps(schema)}
    )
    assert response.status_code == 302
    assert Tool.objects.get(name="run_tests").input_schema == schema


def test_tool_pages_show_the_schema_indented(admin_client, org):
    tool = Tool.objects.create(
        org=org, name="grep", description="Search", input_schema={"type": "object"}
    )
    listing = admin_client.get("/admin/corpus/tool/").content.decode()
    assert "grep" in listing
    page = admin_client.get(f"/admin/corpus/tool/{tool.pk}/change/").content.decode()
    assert "{\n  &quot;type&quot;: &quot;object&quot;\n}" in page


def test_skill_has_the_same_editor_and_keeps_its_body_as_typed(admin_client, org):
    response = admin_client.get("/admin/corpus/skill/add/")
    page = response.content.decode()
    assert 'class="md-editor"' in page and "/static/corpus/editor.js" in page
    response = admin_client.post(
        "/admin/corpus/skill/add/",
        {
            "org": org.pk,
            "name": "django-migrations",
            "domain": "django",
            "description": "Writing safe migrations.",
            "body": "  indented\r\n\r\n# Title\r\n",
        },
    )
    assert response.status_code == 302
    skill = Skill.objects.get(name="django-migrations")
    assert skill.body == "  indented\n\n# Title\n"
    listing = admin_client.get("/admin/corpus/skill/", {"domain": "django"}).content.decode()
    assert "django-migrations" in listing
