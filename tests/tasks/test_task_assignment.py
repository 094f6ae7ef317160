"""Assignment and editing (docs/contract.md §6): ``assigned_app_id`` on create, only that
app may claim, and ``PATCH /api/tasks/{task_id}`` while ready or paused."""

from __future__ import annotations

import pytest

from corpus.models import Document
from tasks.models import Event, Run, Task, TaskStatus
from tests import factories
from tests.helpers import problem, stored


@pytest.fixture
def repo(world):
    return factories.make_repo(world.org, "acme/widgets")


def body(repo, **fields):
    return {
        "title": "Add a health check",
        "prompt": "GET /health answers 200.",
        "definition_of_done": ["it answers 200"],
        "project": repo.project.slug,
        "repo": repo.full_name,
        **fields,
    }


def task_document(task):
    return Document.objects.get(path=f"task/{task.public_id}.md")


# --- create ---------------------------------------------------------------------------


def test_create_assigned_to_an_app_of_the_org(world, repo):
    response = world.person().post("/api/tasks", body(repo, assigned_app_id="builder"))
    assert response.status_code == 201, response.content
    assert response.json()["assigned_app_id"] == "builder"
    task = Task.objects.get(public_id=response.json()["id"])
    assert task.assigned_app == world.app
    assert "Assigned to harness app `builder`" in task_document(task).body


def test_create_unassigned_by_default_and_with_null(world, repo):
    for extra in ({}, {"assigned_app_id": None}):
        response = world.person().post("/api/tasks", body(repo, **extra))
        assert response.status_code == 201
        assert response.json()["assigned_app_id"] is None


@pytest.mark.parametrize("app_id", ["nobody", "", 7, ["builder"]])
def test_create_assigned_to_an_unknown_app_is_400_and_stores_nothing(world, repo, app_id):
    before = stored()
    response = world.person().post("/api/tasks", body(repo, assigned_app_id=app_id))
    assert problem(response, 400, "validation_error")["errors"]["assigned_app_id"]
    assert stored() == before


def test_an_app_of_another_org_cannot_be_assigned(world, repo):
    # globex has its own "builder"; acme's task may only name acme's apps
    world.app.app_id = "acme-only"
    world.app.save()
    response = world.person().post("/api/tasks", body(repo, assigned_app_id="builder"))
    problem(response, 400, "validation_error")
    assert not Task.objects.filter(title="Add a health check").exists()


def test_a_revoked_app_cannot_be_assigned(world, repo):
    from tasks.harnesses.keys import harness_app_revoke

    harness_app_revoke(org=world.org, app_id="rival")
    response = world.person().post("/api/tasks", body(repo, assigned_app_id="rival"))
    problem(response, 400, "validation_error")


# --- claim ----------------------------------------------------------------------------


def test_only_the_assigned_app_may_claim(world):
    task = world.task(assigned_app_id="builder")
    before = stored()
    refused = problem(world.rival_harness().claim(task.public_id), 409, "task_assigned")
    assert refused["assigned_app_id"] == "builder"
    assert stored() == before
    granted = world.harness().claim(task.public_id)
    assert granted.status_code == 200
    assert Run.objects.get(task=task).app == world.app


# --- PATCH ----------------------------------------------------------------------------


def patch(world, task, data, caller=None):
    caller = caller or world.person()
    return caller.method(
        "PATCH",
        f"/api/tasks/{task.public_id}",
        data=__import__("json").dumps(data),
        content_type="application/json",
    )


def test_patch_changes_the_fields_sent_and_rewrites_the_task_document(world, task):
    version = task_document(task).version
    response = patch(
        world,
        task,
        {
            "title": "Make it deterministic",
            "definition_of_done": ["passes 1000 times"],
            "branch_scope": "ether/flaky-*",
            "assigned_app_id": "rival",
        },
    )
    assert response.status_code == 200, response.content
    out = response.json()
    assert out["title"] == "Make it deterministic"
    assert out["prompt"] == task.prompt  # not sent, kept
    assert out["assigned_app_id"] == "rival"
    task.refresh_from_db()
    assert task.branch_scope == "ether/flaky-*" and task.assigned_app == world.rival
    document = task_document(task)
    assert document.version == version + 1
    text = document.body
    assert "# Make it deterministic" in text and "- [ ] passes 1000 times" in text
    assert "`ether/flaky-*`" in text and "Assigned to harness app `rival`" in text
    edited = Event.objects.get(task=task, payload__kind="edited")
    assert edited.payload["changed"] == [
        "assigned_app_id",
        "branch_scope",
        "definition_of_done",
        "title",
    ]
    # The assignment binds the next claim, and the bundle carries the new text.
    problem(world.harness().claim(task.public_id), 409, "task_assigned")
    bundle = world.rival_harness().claim(task.public_id).json()["bundle"]
    assert bundle["title"] == "Make it deterministic"


def test_patch_null_unassigns(world):
    task = world.task(assigned_app_id="builder")
    response = patch(world, task, {"assigned_app_id": None})
    assert response.json()["assigned_app_id"] is None
    assert world.rival_harness().claim(task.public_id).status_code == 200


def test_patch_that_changes_nothing_stores_nothing(world, task):
    before = stored()
    response = patch(world, task, {"title": task.title})
    assert response.status_code == 200
    assert stored() == before


def test_patch_a_paused_task(world, task, harness, claimed):
    harness.interrupt(task.public_id, claimed["run_id"])
    response = patch(world, task, {"prompt": "Also fix the other one."})
    assert response.status_code == 200
    assert Task.objects.get(pk=task.pk).status == TaskStatus.PAUSED


@pytest.mark.parametrize("state", ["in_progress", "completed", "cancelled"])
def test_patch_outside_ready_or_paused_is_409_and_stores_nothing(world, task, harness, state):
    if state in ("in_progress", "completed"):
        run_id = harness.claim(task.public_id).json()["run_id"]
        if state == "completed":
            harness.result(task.public_id, run_id, status="no_changes")
    else:
        world.person().post(f"/api/tasks/{task.public_id}/cancel")
    before = stored()
    problem(patch(world, task, {"title": "Too late"}), 409, "task_not_editable")
    assert stored() == before


@pytest.mark.parametrize(
    "data",
    [
        {"title": ""},
        {"title": 5},
        {"definition_of_done": "one"},
        {"branch_scope": "has space"},
        {"assigned_app_id": "nobody"},
        {"project": "elsewhere"},
        {"status": "completed"},
        [],
    ],
)
def test_patch_with_bad_fields_is_400_and_stores_nothing(world, task, data):
    before = stored()
    problem(patch(world, task, data), 400, "validation_error")
    assert stored() == before


def test_patch_needs_a_person_of_the_org(world, task):
    problem(patch(world, task, {"title": "x"}, caller=world.outsider()), 404, "not_found")
    response = world.harness().method(
        "PATCH", f"/api/tasks/{task.public_id}", data="{}", content_type="application/json"
    )
    assert response.status_code in (401, 403)
    assert Task.objects.get(pk=task.pk).title == task.title


# --- discovery ------------------------------------------------------------------------


def test_harness_task_list_shows_what_this_app_may_claim_oldest_first(world):
    first = world.task(title="first")
    mine = world.task(title="mine", assigned_app_id="builder")
    world.task(title="theirs", assigned_app_id="rival")
    running = world.task(title="running")
    world.rival_harness().claim(running.public_id)
    world.outsider_harness()  # globex's tasks are never listed
    factories.make_task(world.outsider_org, title="elsewhere")

    response = world.harness().get("/api/harness/tasks?status=ready")
    assert response.status_code == 200, response.content
    page = response.json()
    assert page["next_cursor"] is None
    assert [row["title"] for row in page["data"]] == ["first", "mine"]
    row = page["data"][0]
    assert row == {
        "task_id": first.public_id,
        "title": "first",
        "status": "ready",
        "assigned_app_id": None,
        "created_at": row["created_at"],
        "execution_url": f"http://testserver/api/harness/tasks/{first.public_id}/execution",
        "claim_url": f"http://testserver/api/harness/tasks/{first.public_id}/claim",
    }
    assert page["data"][1]["assigned_app_id"] == "builder"
    assert [r["title"] for r in world.rival_harness().get("/api/harness/tasks").json()["data"]] == [
        "first",
        "theirs",
    ]
    assert mine.public_id not in str(world.rival_harness().get("/api/harness/tasks").json())


def test_harness_task_list_pages_with_the_cursor(world):
    ids = [world.task(title=f"t{i}").public_id for i in range(5)]
    harness = world.harness()
    seen, cursor = [], None
    while True:
        url = "/api/harness/tasks?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = harness.get(url).json()
        seen += [row["task_id"] for row in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids


@pytest.mark.parametrize("query", ["status=completed", "status=READY", "limit=0", "cursor=x"])
def test_harness_task_list_bad_query_is_400(world, query):
    problem(world.harness().get(f"/api/harness/tasks?{query}"), 400, "validation_error")


def test_harness_task_list_needs_a_harness_key(world):
    problem(world.person().get("/api/harness/tasks"), 401, "not_authenticated")
