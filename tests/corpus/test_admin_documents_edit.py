"""The admin of documents, tools and skills: list, editor, stale-edit guard, preview,
versions with diff and restore."""

from __future__ import annotations

from django import forms
from django.test import Client
from django.utils.html import escape

from corpus import admin as corpus_admin
from corpus.models import Document, DocumentVersion
from corpus.rendering import render_markdown
from corpus.services import document_create, document_save
from tests import factories
from tests.corpus import admin_documents_support
from tests.corpus.admin_documents_support import (
    BODY,
    LIST,
    PREVIEW,
    change_url,
    messages_of,
    versions_url,
)

# The shared fixtures, bound here so that pytest finds them for this module's tests.
bob = admin_documents_support.bob
doc = admin_documents_support.doc
org = admin_documents_support.org


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
