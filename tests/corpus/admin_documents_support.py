"""Helpers and fixtures shared by the document admin tests (test_admin_documents_*.py)."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages

from corpus.models import Document
from corpus.services import document_create
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
