"""Helpers and fixtures shared by the documents API tests (test_documents_api_*.py)
and the markdown cost tests."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import pytest

from corpus.models import Document, DocumentVersion
from tests import factories
from tests.helpers import Caller

DOCS = "/api/context/docs"
ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
DETAIL_KEYS = {"id", "kind", "path", "title", "version", "body", "html", "updated_at", "updated_by"}
ROW_KEYS = {"id", "kind", "path", "title", "version", "bytes", "sha256", "updated_at", "updated_by"}
UNKNOWN_DOC = "doc_" + "0" * 32


def sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def put(caller: Caller, doc_id: str, data: Any, **extra: Any) -> Any:
    return caller.method(
        "put",
        f"{DOCS}/{doc_id}",
        data=json.dumps(data),
        content_type="application/json",
        **extra,
    )


def stored() -> dict[str, Any]:
    """Every document write, to prove that a refusal changed nothing."""
    return {
        "docs": list(
            Document.objects.order_by("pk").values_list(
                "public_id", "kind", "title", "body", "version", "sha256", "updated_at"
            )
        ),
        "versions": list(
            DocumentVersion.objects.order_by("pk").values_list("document_id", "version", "body")
        ),
    }


@pytest.fixture
def repo(world):
    return factories.make_repo(world.org, "acme/widgets")


@pytest.fixture
def bob(world):
    return factories.make_user(world.org, "bob")


@pytest.fixture
def profile(world):
    """Alice's profile document, created over the API: the 201 response."""
    response = world.person().post(DOCS, {"kind": "profile", "body": "# Alice\n\nSmall PRs.\n"})
    assert response.status_code == 201, response.content
    return response
