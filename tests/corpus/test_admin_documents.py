"""The admin of documents, tools and skills: list, editor, stale-edit guard, preview,
versions with diff and restore."""

from __future__ import annotations

import json

import pytest
from django import forms
from django.contrib.messages import get_messages
from django.test import Client
from django.utils.html import escape

from corpus import admin as corpus_admin
from corpus.diffing import diff_texts
from corpus.models import Document, DocumentVersion, Skill, Tool
from corpus.rendering import render_markdown
from corpus.services import document_create, document_save
from tests import factories

LIST = "/admin/corpus/document/"
PREVIEW = "/admin/corpus/document/preview/"
BODY = "# Plan\n\nfirst line\nkept line\n"


def change_url(doc: Document) -> str:
    return f"/admin/corpus/document/{doc.pk}/change/"


def versions_url(doc: Document) -> str:
    return f"/admin/corpus/document/{doc.pk}/versions/"


def restore_url(doc: Document, version: int) -> str:
    return f"/admin/corpus/document/{doc.pk}/versions/{version}/restore/"


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.fixture
def org(db):
    return factories.make_org("acme")


@pytest.fixture
def doc(org, admin_user):
    project = factories.make_repo(org).project
    return document_create(
        org=org, kind="project", project=project, body=BODY, title="Project plan", user=admin_user
    )


@pytest.fixture
def bob(org):
    return factories.make_user(org, "bob")


# --- List ---------------------------------------------------------------------------------


def test_list_shows_the_columns(admin_client, doc):
    response = admin_client.get(LIST)
    assert response.status_code == 200
    page = response.content.decode()
    for column in ["path", "title", "kind", "scope", "version", "updated", "size_display"]:
        assert f"column-{column}" in page, column
    row = page[page.index('id="result_list"') :]
    assert "project.md" in row
    assert "Project plan" in row
    assert f"acme · project {doc.project}" in row
    assert f"{doc.updated_at:%Y-%m-%d %H:%M} · admin" in row
    assert f"{len(BODY)}\xa0bytes" in row


def test_list_filters_by_kind_and_searches_the_body(admin_client, doc, org):
    factories.make_user(org, "carol")
    profile = document_create(
        org=org, kind="profile", owner=factories.make_user(org, "dave"), body="likes tea"
    )
    by_kind = admin_client.get(LIST, {"kind": "profile"}).content.decode()
    assert change_url(profile) in by_kind and change_url(doc) not in by_kind
    found = admin_client.get(LIST, {"q": "kept line"}).content.decode()
    assert change_url(doc) in found and change_url(profile) not in found


def test_documents_are_not_deleted_in_the_admin(admin_client, doc):
    assert admin_client.post(f"/admin/corpus/document/{doc.pk}/delete/").status_code == 403
    assert Document.objects.filter(pk=doc.pk).exists()


def test_add_document_creates_version_one_through_the_service(admin_client, admin_user, org):
    repo = factories.make_repo(org, "acme/api")
    page = admin_client.get(f"{LIST}add/")
    assert page.status_code == 200
    assert set(page.context["adminform"].form.fields["kind"].choices) == {
        ("profile", "Profile (a person's preferences)"),
        ("project", "Project"),
        ("repo", "Repository"),
    }
    response = admin_client.post(
        f"{LIST}add/",
        {
            "org": org.pk,
            "kind": "repo",
            "repo": repo.pk,
            "project": repo.project.pk,  # not the kind's scope: ignored
            "title": "API repo",
            "body": "# API\r\n\r\n<details>hidden</details>\r\n",
        },
    )
    assert response.status_code == 302, response.content[:3000]
    created = Document.objects.get(org=org, kind="repo", repo=repo)
    assert (created.path, created.title, created.version) == ("repo.md", "API repo", 1)
    assert created.body == "# API\n\n<details>hidden</details>\n"
    assert created.project is None
    version = DocumentVersion.objects.get(document=created, version=1)
    assert version.created_by == admin_user
    shown = messages_of(response)
    assert shown[0] == "Added repo.md as version 1."
    assert "<details>" in shown[1] and "removed by the sanitizer" in shown[1]
    assert len(shown) == 2


def test_add_document_refuses_a_scope_that_has_one_or_is_missing(admin_client, org, doc):
    base = {"org": org.pk, "title": "t", "body": "x"}
    twice = admin_client.post(f"{LIST}add/", {**base, "kind": "project", "project": doc.project.pk})
    assert twice.status_code == 200
    assert "already has its project.md" in twice.content.decode()
    missing = admin_client.post(f"{LIST}add/", {**base, "kind": "profile"})
    assert missing.context["adminform"].form.errors["owner"] == ["A profile document needs this."]
    outsider = factories.make_user(factories.make_org("other"), "eve")
    foreign = admin_client.post(f"{LIST}add/", {**base, "kind": "profile", "owner": outsider.pk})
    assert "is not a member of acme" in foreign.content.decode()
    assert Document.objects.filter(org=org).count() == 1


# --- Change form --------------------------------------------------------------------------


def test_change_form_edits_title_and_body_with_the_editor(admin_client, doc):
    response = admin_client.get(change_url(doc))
    assert response.status_code == 200
    form = response.context["adminform"].form
    assert set(form.fields) == {"title", "body", "etag"}
    assert form["etag"].value() == doc.etag
    page = response.content.decode()
    assert 'class="md-editor"' in page
    assert f'data-preview-url="{PREVIEW}"' in page
    assert "/static/corpus/editor.js" in page and "/static/corpus/editor.css" in page
    assert f'href="{versions_url(doc)}"' in page


def test_edit_stores_a_new_version_through_the_service(admin_client, admin_user, doc):
    response = admin_client.post(
        change_url(doc),
        {
            "title": "Project plan, revised",
            # Browsers send a textarea's lines with CRLF.
            "body": "# Plan\r\n\r\nsecond line\r\nkept line\r\n",
            "etag": doc.etag,
            "_continue": "Save and continue editing",
        },
    )
    assert response.status_code == 302, response.content[:2000]
    assert messages_of(response) == ["Saved project.md as version 2."]  # one message, not two
    doc.refresh_from_db()
    assert doc.version == 2
    assert doc.title == "Project plan, revised"
    assert doc.body == "# Plan\n\nsecond line\nkept line\n"
    assert doc.updated_by == admin_user
    version = DocumentVersion.objects.get(document=doc, version=2)
    assert (version.body, version.title, version.sha256) == (doc.body, doc.title, doc.sha256)
    assert version.created_by == admin_user
    assert version.note == "edited in the admin"


def test_saving_an_unchanged_form_stores_no_version(admin_client, doc):
    response = admin_client.post(
        change_url(doc),
        {"title": doc.title, "body": doc.body.replace("\n", "\r\n"), "etag": doc.etag},
    )
    assert response.status_code == 302
    doc.refresh_from_db()
    assert doc.version == 1 and doc.body == BODY
    assert DocumentVersion.objects.filter(document=doc).count() == 1


def test_stale_etag_save_shows_the_error_keeps_the_text_and_stores_nothing(admin_client, doc, bob):
    opened = doc.etag
    document_save(document=doc, body="bob's text", user=bob)
    response = admin_client.post(
        change_url(doc), {"title": "Mine", "body": "my <b>text</b>", "etag": opened}
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert (
        "bob saved version 2 since you opened this; your text is kept below, reload to merge."
    ) in page
    form = response.context["adminform"].form
    assert form["body"].value() == "my <b>text</b>"
    assert escape("my <b>text</b>") in page
    # The stale tag stays in the form: saving again without reloading is refused again.
    assert form["etag"].value() == opened
    doc.refresh_from_db()
    assert (doc.version, doc.body, doc.title) == (2, "bob's text", "Project plan")
    assert DocumentVersion.objects.filter(document=doc).count() == 2


def test_edit_racing_a_save_after_validation_is_refused_with_the_same_error(
    admin_client, doc, bob, monkeypatch
):
    """Bob's save commits after the form validated but before the service ran (possible on
    Postgres, where the request's transaction does not lock the row while validating). The
    service's own ETag check under the row lock refuses the save; the form comes back with
    the error and the user's text."""
    opened = doc.etag
    document_save(document=doc, body="bob was faster", user=bob)
    real_clean = corpus_admin.DocumentForm.clean
    passes = []

    def clean_on_an_old_snapshot(self):
        passes.append(self)
        if len(passes) == 1:
            # The first validation still saw the version the editor opened.
            return forms.ModelForm.clean(self)
        return real_clean(self)

    monkeypatch.setattr(corpus_admin.DocumentForm, "clean", clean_on_an_old_snapshot)
    response = admin_client.post(
        change_url(doc), {"title": doc.title, "body": "mine", "etag": opened}
    )
    assert len(passes) == 2
    assert response.status_code == 200
    assert "bob saved version 2 since you opened this" in response.content.decode()
    assert response.context["adminform"].form["body"].value() == "mine"
    doc.refresh_from_db()
    assert (doc.version, doc.body) == (2, "bob was faster")
    assert DocumentVersion.objects.filter(document=doc).count() == 2


def test_save_without_an_etag_is_refused(admin_client, doc):
    response = admin_client.post(change_url(doc), {"title": doc.title, "body": "no tag"})
    assert response.status_code == 200
    assert "saved version 1 since you opened this" in response.content.decode()
    doc.refresh_from_db()
    assert (doc.version, doc.body) == (1, BODY)


def test_change_form_refused_to_non_staff(client, doc, bob):
    client.force_login(bob)
    response = client.post(change_url(doc), {"title": "x", "body": "x", "etag": doc.etag})
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    doc.refresh_from_db()
    assert doc.version == 1


# --- Preview endpoint ---------------------------------------------------------------------

HOSTILE = "# Hi\n\n<script>alert(1)</script>\n\n[click](javascript:alert(2))\n"


def test_preview_returns_the_sanitized_rendering(admin_client):
    response = admin_client.post(PREVIEW, {"text": HOSTILE})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    html = response.json()["html"]
    assert html == render_markdown(HOSTILE)
    assert "<h1>Hi</h1>" in html
    assert "<script" not in html.lower() and "alert(1)" not in html
    assert "javascript:" not in html.lower()
    assert "click" in html


def test_preview_of_nothing_is_empty(admin_client):
    response = admin_client.post(PREVIEW, {})
    assert response.status_code == 200
    assert response.json() == {"html": "", "removed": [], "notice": ""}


def test_preview_says_what_the_sanitizer_removed(admin_client):
    response = admin_client.post(
        PREVIEW, {"text": "# Hi\n\n<script>alert(1)</script>\n\n[x](javascript:alert(2))\n"}
    )
    data = response.json()
    assert "<script" not in data["html"] and "javascript:" not in data["html"]
    assert data["removed"] == ["<script>", "href of <a>"]
    assert "removed by the sanitizer" in data["notice"] and "<script>" in data["notice"]
    plain = admin_client.post(PREVIEW, {"text": "# Hi\n\n[x](https://example.com)\n"}).json()
    assert plain["removed"] == [] and plain["notice"] == ""


def test_preview_refused_to_anonymous(client, db):
    response = client.post(PREVIEW, {"text": HOSTILE})
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_preview_refused_to_non_staff(client, bob):
    client.force_login(bob)
    response = client.post(PREVIEW, {"text": HOSTILE})
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_preview_needs_the_csrf_token(admin_user):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(admin_user)
    assert browser.post(PREVIEW, {"text": "x"}).status_code == 403
    browser.get("/admin/")  # sets the csrftoken cookie, as the admin page does
    token = browser.cookies["csrftoken"].value
    response = browser.post(PREVIEW, {"text": "*x*"}, HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 200
    assert response.json()["html"] == "<p><em>x</em></p>"


def test_preview_is_post_only(admin_client):
    assert admin_client.get(PREVIEW, {"text": "x"}).status_code == 405


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
