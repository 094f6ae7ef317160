"""GET /api/harness/context/pack (docs/contract.md §6): the task's context in one call."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import override_settings

from corpus.models import Document, DocumentKind
from corpus.services import document_create, document_save, memory_compact
from tests import factories
from tests.helpers import Caller, problem

PACK = "/api/harness/context/pack"
DOC_KEYS = {"id", "path", "title", "version", "sha256", "etag", "changed_since_last_run", "body"}


def pack(harness: Any, task: Any, budget: int | None = None) -> dict[str, Any]:
    url = f"{PACK}?task_id={task.public_id}"
    if budget is not None:
        url += f"&budget_bytes={budget}"
    response = harness.get(url)
    assert response.status_code == 200, response.content
    return response.json()


def size(text: str) -> int:
    return len(text.encode("utf-8"))


def working(world: Any, task: Any, run_ref: str, body: str) -> Document:
    return document_create(
        org=world.org, kind="working", task_ref=task.public_id, run_ref=run_ref, body=body
    )


@pytest.fixture
def scope(world, task) -> dict[str, Document]:
    org = world.org
    return {
        "profile": document_create(
            org=org, kind="profile", owner=world.user, body="Préfère les petites PR.\n"
        ),
        "project": document_create(org=org, kind="project", project=task.project, body="# P\n"),
        "repo": document_create(org=org, kind="repo", repo=task.repo, body="# Repo\n\nrules\n"),
        "task": Document.objects.get(org=org, kind="task", task_ref=task.public_id),
        # Not in the scope: another user's profile, another org's repo notes.
        "bob": document_create(
            org=org, kind="profile", owner=factories.make_user(org, "bob"), body="Bob.\n"
        ),
    }


def test_pack_is_whole_documents_in_priority_order(world, task, harness, scope):
    old = working(world, task, "run_" + "1" * 32, "older notes\n")
    new = working(world, task, "run_" + "2" * 32, "newer notes\n")
    body = pack(harness, task, budget=1_000_000)
    assert set(body) == {"task_id", "budget_bytes", "used_bytes", "docs", "omitted"}
    assert body["task_id"] == task.public_id and body["budget_bytes"] == 1_000_000
    assert [d["path"] for d in body["docs"]] == [
        f"task/{task.public_id}.md",
        new.path,
        old.path,
        "repo.md",
        "project.md",
        "profile.md",
    ]
    assert body["omitted"] == []
    stored = {d.public_id: d for d in Document.objects.all()}
    for item in body["docs"]:
        assert set(item) == DOC_KEYS
        doc = stored[item["id"]]
        assert item["body"] == doc.body  # whole, byte for byte
        assert (item["version"], item["sha256"], item["title"]) == (
            doc.version,
            doc.sha256,
            doc.title,
        )
        assert item["changed_since_last_run"] is True  # no run has read anything yet
    assert body["used_bytes"] == sum(size(d["body"]) for d in body["docs"])
    assert "Bob." not in str(body)


def test_the_etag_is_the_document_routes_etag(world, task, harness, scope):
    body = pack(harness, task)
    for item in body["docs"]:
        url = f"/api/harness/context/doc/{item['id']}?task_id={task.public_id}"
        response = harness.get(url)
        assert response["ETag"] == item["etag"]
        assert harness.get(url, HTTP_IF_NONE_MATCH=item["etag"]).status_code == 304


def test_a_document_that_does_not_fit_is_omitted_never_cut(world, task, harness, scope):
    big = "x" * 5000 + "\n"
    document_save(document=scope["repo"], body=big)
    task_bytes = scope["task"].size
    budget = task_bytes + size("# P\n") + size("Préfère les petites PR.\n")
    body = pack(harness, task, budget=budget)
    # The repo document would pass the budget: it is named, and the smaller ones after it
    # still get in.
    assert [d["path"] for d in body["docs"]] == [scope["task"].path, "project.md", "profile.md"]
    assert body["omitted"] == [
        {
            "id": scope["repo"].public_id,
            "path": "repo.md",
            "bytes": size(big),
            "reason": "over_budget",
        }
    ]
    assert body["used_bytes"] == budget


def test_a_zero_budget_omits_everything(world, task, harness, scope):
    body = pack(harness, task, budget=0)
    assert body["docs"] == [] and body["used_bytes"] == 0
    assert [o["path"] for o in body["omitted"]] == [
        scope["task"].path,
        "repo.md",
        "project.md",
        "profile.md",
    ]
    assert {o["reason"] for o in body["omitted"]} == {"over_budget"}


def test_the_default_budget_is_64_kib(world, task, harness, scope):
    assert pack(harness, task)["budget_bytes"] == 65536


@override_settings(ETHER_WORKING_BUDGET_BYTES=600)
def test_notes_folded_into_memory_are_omitted_and_the_memory_comes_first(
    world, task, harness, scope
):
    notes = [
        working(world, task, f"run_{n:032x}", f"## Run {n}\n\n- decided {n}\n" + "y" * 250 + "\n")
        for n in range(1, 5)
    ]
    assert memory_compact(org=world.org, task_ref=task.public_id) is not None
    memory = Document.objects.get(kind=DocumentKind.MEMORY, task_ref=task.public_id)
    body = pack(harness, task, budget=1_000_000)
    paths = [d["path"] for d in body["docs"]]
    assert paths[:2] == [scope["task"].path, memory.path]
    folded = [o for o in body["omitted"] if o["reason"] == "folded_into_memory"]
    assert folded and all(o["path"].startswith("working/") for o in folded)
    kept_notes = [p for p in paths if p.startswith("working/")]
    # Every note is either in the pack (newest first) or named as folded.
    assert sorted(kept_notes + [o["path"] for o in folded]) == sorted(n.path for n in notes)
    assert kept_notes == sorted(kept_notes, reverse=True)


def test_changed_since_last_run_compares_with_the_previous_runs_start(world, task, harness, scope):
    tid = task.public_id
    first = harness.claim(tid).json()["run_id"]
    assert all(d["changed_since_last_run"] for d in pack(harness, task)["docs"])
    finished = harness.result(tid, first, "no_changes", working_summary="Run 1 notes\n")
    assert finished.status_code == 200, finished.content
    document_save(document=scope["repo"], body="# Repo\n\nnew rules\n")
    world.person().post(f"/api/tasks/{tid}/reopen", {})
    harness.claim(tid)
    changed = {d["path"]: d["changed_since_last_run"] for d in pack(harness, task)["docs"]}
    assert changed["repo.md"] is True  # edited after run 1 read it
    assert changed[f"working/{first}.md"] is True  # written by run 1, never read by a run
    assert changed["project.md"] is False
    assert changed["profile.md"] is False


def test_bad_budgets_are_400(world, task, harness):
    for value in ("-1", "abc", "1.5", "16777217", "١٢"):
        response = harness.get(f"{PACK}?task_id={task.public_id}&budget_bytes={value}")
        assert problem(response, 400, "validation_error")["errors"]["budget_bytes"]
    assert problem(harness.get(PACK), 400, "validation_error")["errors"]["task_id"]


def test_pack_of_another_orgs_or_unknown_task_is_404(world, task, harness):
    foreign = factories.make_task(world.outsider_org)
    problem(harness.get(f"{PACK}?task_id={foreign.public_id}"), 404, "not_found")
    problem(harness.get(f"{PACK}?task_id=task_{'0' * 32}"), 404, "not_found")
    problem(world.outsider_harness().get(f"{PACK}?task_id={task.public_id}"), 404, "not_found")


def test_pack_needs_a_harness_key_and_only_answers_get(world, task, harness):
    for caller in (Caller(None), Caller(world.token)):
        problem(caller.get(f"{PACK}?task_id={task.public_id}"), 401, "not_authenticated")
    problem(harness.post(f"{PACK}?task_id={task.public_id}", {}), 405, "method_not_allowed")


def test_the_pack_has_an_etag_that_answers_304_until_something_changes(world, task, harness, scope):
    url = f"{PACK}?task_id={task.public_id}"
    first = harness.get(url)
    etag = first["ETag"]
    assert etag.startswith('"pack-')
    again = harness.get(url, HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304 and again["ETag"] == etag and again.content == b""
    assert harness.get(url, HTTP_IF_NONE_MATCH=f"W/{etag}").status_code == 304
    # Another budget is another answer.
    assert harness.get(url + "&budget_bytes=10", HTTP_IF_NONE_MATCH=etag).status_code == 200
    document_save(document=scope["project"], body="# P, edited\n")
    changed = harness.get(url, HTTP_IF_NONE_MATCH=etag)
    assert changed.status_code == 200 and changed["ETag"] != etag
    assert "# P, edited\n" in [d["body"] for d in changed.json()["docs"]]
