"""The bundle's ``context`` says where to read the context (docs/contract.md §6,
"Context in one call"): each URL works as handed out, with the harness's own key."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

pytestmark = pytest.mark.django_db


def local(url: str) -> str:
    """The path and query of an absolute URL, for Django's test client."""
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def test_the_bundle_context_urls_answer_as_handed_out(world, task, harness):
    claimed = harness.claim(task.public_id)
    assert claimed.status_code == 200, claimed.content
    context = claimed.json()["bundle"]["context"]
    assert set(context) == {
        "doc_ids",
        "slices",
        "pack_url",
        "slices_url",
        "doc_url_template",
        "tools_url",
        "skills_url",
    }
    assert context["pack_url"].endswith(f"/api/harness/context/pack?task_id={task.public_id}")
    assert "{doc_id}" in context["doc_url_template"]

    pack = harness.get(local(context["pack_url"]))
    assert pack.status_code == 200, pack.content
    assert pack.json()["task_id"] == task.public_id
    slices = harness.get(local(context["slices_url"]))
    assert slices.status_code == 200 and slices.json()["task_id"] == task.public_id
    doc_id = context["doc_ids"][0]
    doc = harness.get(local(context["doc_url_template"].replace("{doc_id}", doc_id)))
    assert doc.status_code == 200, doc.content
    assert harness.get(local(context["tools_url"])).status_code == 200
    assert harness.get(local(context["skills_url"])).status_code == 200
