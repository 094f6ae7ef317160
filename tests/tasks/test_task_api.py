from __future__ import annotations

import re
from datetime import timedelta

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.utils import timezone

from accounts.services import access_token_create, access_token_revoke
from tasks.models import Event, Task, TaskStatus
from tests import factories
from tests.helpers import Caller, problem

ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
TASK_KEYS = {
    "id",
    "assigned_app_id",
    "title",
    "prompt",
    "definition_of_done",
    "project",
    "repo",
    "branch_scope",
    "status",
    "owner",
    "cancel_requested",
    "lease_epoch",
    "live_run",
    "open_question",
    "created_at",
    "updated_at",
}


@pytest.fixture
def repo(world):
    return factories.make_repo(world.org, "acme/widgets")


def new_task(where, /, **fields):
    """A valid create body for the repository ``where``, with ``fields`` changed."""
    body = {
        "title": "Add a health check",
        "prompt": "GET /healthz answers 200.",
        "definition_of_done": ["GET /healthz answers 200", "A test covers it"],
        "project": where.project.slug,
        "repo": where.full_name,
    }
    body.update(fields)
    return body


def test_create_task_is_201_with_the_stored_task(world, repo):
    response = world.person().post("/api/tasks", new_task(repo, branch_scope="ether/health-*"))
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == TASK_KEYS
    assert re.fullmatch(r"task_[0-9a-f]{32}", body["id"])
    assert body["title"] == "Add a health check"
    assert body["prompt"] == "GET /healthz answers 200."
    assert body["definition_of_done"] == ["GET /healthz answers 200", "A test covers it"]
    assert body["project"] == repo.project.slug
    assert body["repo"] == "acme/widgets"
    assert body["branch_scope"] == "ether/health-*"
    assert body["status"] == "ready"
    assert body["owner"] == "alice"
    assert body["cancel_requested"] is False
    assert body["lease_epoch"] == 0
    assert body["live_run"] is None
    assert body["open_question"] is None
    assert ISO_Z.match(body["created_at"]) and ISO_Z.match(body["updated_at"])
    task = Task.objects.get(public_id=body["id"])
    assert task.org == world.org
    assert task.owner == world.user
    assert task.project == repo.project and task.repo == repo
    assert task.status == TaskStatus.READY
    assert task.branch_scope == "ether/health-*"
    assert task.definition_of_done == body["definition_of_done"]


def test_create_task_records_created_timeline_and_activity_events(world, repo):
    body = world.person().post("/api/tasks", new_task(repo)).json()
    task = Task.objects.get(public_id=body["id"])
    timeline = list(Event.objects.filter(task=task, name="task.timeline"))
    assert len(timeline) == 1
    assert timeline[0].topic == f"tasks/{task.public_id}"
    assert timeline[0].payload["kind"] == "created"
    assert timeline[0].payload["actor"] == {"type": "user", "username": "alice"}
    activity = list(Event.objects.filter(task=task, name="activity.list_updated"))
    assert len(activity) == 1
    assert activity[0].topic == "activity/acme"
    assert activity[0].payload["status"] == "ready"
    assert activity[0].payload["task"]["id"] == task.public_id
    assert activity[0].payload["task"]["status"] == "ready"


def test_create_task_defaults_branch_scope_to_ether_glob(world, repo):
    body = world.person().post("/api/tasks", new_task(repo)).json()
    assert body["branch_scope"] == "ether/*"
    assert Task.objects.get(public_id=body["id"]).branch_scope == "ether/*"


def test_create_task_with_other_orgs_project_and_repo_is_400(world, repo):
    theirs = factories.make_repo(world.outsider_org, "globex/secret")
    response = world.person().post(
        "/api/tasks", new_task(repo, project=theirs.project.slug, repo=theirs.full_name)
    )
    body = problem(response, 400, "validation_error")
    assert set(body["errors"]) == {"project", "repo"}
    assert not Task.objects.exists()
    assert not Event.objects.exists()


def test_create_task_with_unknown_project_or_repo_is_400(world, repo):
    person = world.person()
    body = problem(
        person.post("/api/tasks", new_task(repo, project="nope")), 400, "validation_error"
    )
    assert list(body["errors"]) == ["project"]
    body = problem(
        person.post("/api/tasks", new_task(repo, repo="acme/nope")), 400, "validation_error"
    )
    assert list(body["errors"]) == ["repo"]
    assert not Task.objects.exists()
    assert not Event.objects.exists()


def test_create_task_with_repo_of_another_project_is_400(world, repo):
    other = factories.make_repo(world.org, "acme/gadgets")
    response = world.person().post("/api/tasks", new_task(repo, repo=other.full_name))
    body = problem(response, 400, "validation_error")
    assert list(body["errors"]) == ["repo"]
    assert not Task.objects.exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("title", 7),
        ("prompt", ["not", "a", "string"]),
        ("definition_of_done", "one string"),
        ("definition_of_done", [1, 2]),
        ("project", None),
        ("repo", {"full_name": "acme/widgets"}),
        ("branch_scope", 5),
        ("branch_scope", "ether/ with spaces"),
        ("branch_scope", ""),
    ],
)
def test_create_task_with_wrong_types_is_400(world, repo, field, value):
    response = world.person().post("/api/tasks", new_task(repo, **{field: value}))
    body = problem(response, 400, "validation_error")
    assert any(name == field or name.startswith(field + ".") for name in body["errors"]), body
    assert not Task.objects.exists()
    assert not Event.objects.exists()


def test_create_task_string_fields_are_not_coerced(world, repo):
    body = problem(
        world.person().post("/api/tasks", new_task(repo, title=7)), 400, "validation_error"
    )
    assert body["errors"]["title"] == ["Must be a string."]


def test_create_task_with_missing_fields_is_400(world, repo):
    response = world.person().post("/api/tasks", {})
    body = problem(response, 400, "validation_error")
    assert {"title", "prompt", "definition_of_done", "project", "repo"} <= set(body["errors"])
    assert "branch_scope" not in body["errors"]
    assert not Task.objects.exists()


def test_create_task_with_unknown_field_is_400(world, repo):
    response = world.person().post("/api/tasks", new_task(repo, priority="high"))
    body = problem(response, 400, "validation_error")
    assert body["errors"] == {"priority": ["Unknown field."]}
    assert not Task.objects.exists()


def test_create_task_with_malformed_or_non_object_json_is_400(world, repo):
    person = world.person()
    problem(person.post("/api/tasks", raw="{nope"), 400, "malformed_json")
    problem(person.post("/api/tasks", raw="[1, 2]"), 400, "validation_error")
    problem(person.post("/api/tasks", raw='"a string"'), 400, "validation_error")
    assert not Task.objects.exists()


def test_create_task_with_non_json_content_type_is_415(world, repo):
    response = world.person().post(
        "/api/tasks", raw="title=x", content_type="application/x-www-form-urlencoded"
    )
    problem(response, 415, "unsupported_media_type")
    assert not Task.objects.exists()


def test_list_tasks_newest_first(world, repo):
    first = world.task(repo=repo)
    second = world.task(repo=repo, title="Second")
    factories.make_task(world.outsider_org, owner=world.outsider_user)
    response = world.person().get("/api/tasks")
    assert response.status_code == 200
    body = response.json()
    assert body["next_cursor"] is None
    assert [t["id"] for t in body["data"]] == [second.public_id, first.public_id]
    assert set(body["data"][0]) == TASK_KEYS
    assert body["data"][0]["title"] == "Second"


def test_list_tasks_filters_by_status(world, repo, harness):
    ready = world.task(repo=repo)
    busy = world.task(repo=repo)
    assert harness.claim(busy.public_id).status_code == 200
    person = world.person()
    body = person.get("/api/tasks?status=in_progress").json()
    assert [t["id"] for t in body["data"]] == [busy.public_id]
    assert body["data"][0]["status"] == "in_progress"
    body = person.get("/api/tasks?status=ready").json()
    assert [t["id"] for t in body["data"]] == [ready.public_id]
    body = person.get("/api/tasks?status=cancelled").json()
    assert body == {"data": [], "next_cursor": None}


def test_list_tasks_with_unknown_status_is_400(world, repo):
    world.task(repo=repo)
    response = world.person().get("/api/tasks?status=done")
    body = problem(response, 400, "validation_error")
    assert list(body["errors"]) == ["status"]


def test_list_tasks_paginates_with_opaque_cursor(world, repo):
    tasks = [world.task(repo=repo, title=f"Task {n}") for n in range(3)]
    person = world.person()
    seen = []
    page = person.get("/api/tasks?limit=1").json()
    assert len(page["data"]) == 1
    seen += [t["id"] for t in page["data"]]
    while page["next_cursor"]:
        response = person.get(f"/api/tasks?limit=1&cursor={page['next_cursor']}")
        assert response.status_code == 200
        page = response.json()
        seen += [t["id"] for t in page["data"]]
    assert seen == [t.public_id for t in reversed(tasks)]
    page = person.get("/api/tasks?limit=2").json()
    assert len(page["data"]) == 2 and page["next_cursor"]
    rest = person.get(f"/api/tasks?limit=2&cursor={page['next_cursor']}").json()
    assert [t["id"] for t in rest["data"]] == [tasks[0].public_id]
    assert rest["next_cursor"] is None


def test_list_tasks_default_page_is_50(world, repo):
    tasks = [world.task(repo=repo, title=f"Task {n}") for n in range(51)]
    person = world.person()
    page = person.get("/api/tasks").json()
    assert len(page["data"]) == 50
    assert page["data"][0]["id"] == tasks[-1].public_id
    assert page["next_cursor"]
    rest = person.get(f"/api/tasks?cursor={page['next_cursor']}").json()
    assert [t["id"] for t in rest["data"]] == [tasks[0].public_id]
    assert rest["next_cursor"] is None


def test_list_tasks_limit_200_is_accepted(world, repo):
    world.task(repo=repo)
    response = world.person().get("/api/tasks?limit=200")
    assert response.status_code == 200
    assert len(response.json()["data"]) == 1


@pytest.mark.parametrize("limit", ["0", "201", "x", "-1", "1.5"])
def test_list_tasks_with_bad_limit_is_400(world, repo, limit):
    response = world.person().get(f"/api/tasks?limit={limit}")
    body = problem(response, 400, "validation_error")
    assert list(body["errors"]) == ["limit"]


@pytest.mark.parametrize("cursor", ["garbage!", "eyJ4IjogMX0", "bm90IGpzb24"])
def test_list_tasks_with_bad_cursor_is_400(world, repo, cursor):
    response = world.person().get(f"/api/tasks?cursor={cursor}")
    body = problem(response, 400, "validation_error")
    assert list(body["errors"]) == ["cursor"]


def test_get_task_returns_its_detail(world, task):
    response = world.person().get(f"/api/tasks/{task.public_id}")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == TASK_KEYS
    assert body["id"] == task.public_id
    assert body["status"] == "ready"
    assert body["repo"] == task.repo.full_name


def test_get_task_shows_live_run(world, task, claimed):
    body = world.person().get(f"/api/tasks/{task.public_id}").json()
    assert body["status"] == "in_progress"
    assert body["live_run"]["run_id"] == claimed["run_id"]
    assert body["live_run"]["app_id"] == "builder"
    assert body["live_run"]["lease_live"] is True


def test_get_task_of_other_org_unknown_or_malformed_id_is_404(world, task):
    problem(world.outsider().get(f"/api/tasks/{task.public_id}"), 404, "not_found")
    person = world.person()
    problem(person.get("/api/tasks/task_" + "0" * 32), 404, "not_found")
    problem(person.get("/api/tasks/task_nothex"), 404, "not_found")
    problem(person.get("/api/tasks/" + task.public_id.upper()), 404, "not_found")
    problem(person.get("/api/tasks/42"), 404, "not_found")


def test_other_org_does_not_see_tasks_in_list(world, task):
    body = world.outsider().get("/api/tasks").json()
    assert body == {"data": [], "next_cursor": None}


def test_task_routes_without_or_with_wrong_token_are_401(world, task, repo):
    for caller in (Caller(None), Caller("eth_pat_wrong"), Caller(world.key)):
        response = caller.get("/api/tasks")
        problem(response, 401, "not_authenticated")
        assert response["WWW-Authenticate"].startswith("Bearer")
        problem(caller.get(f"/api/tasks/{task.public_id}"), 401, "not_authenticated")
        problem(caller.post("/api/tasks", new_task(repo)), 401, "not_authenticated")
    response = Caller(None).get("/api/tasks", HTTP_AUTHORIZATION="Basic YWxpY2U6cHc=")
    problem(response, 401, "not_authenticated")
    assert Task.objects.count() == 1


def test_revoked_token_is_401(world, repo):
    issued = access_token_create(username="alice")
    caller = Caller(issued.secret)
    assert caller.get("/api/tasks").status_code == 200
    access_token_revoke(token=issued.token)
    body = problem(caller.get("/api/tasks"), 401, "not_authenticated")
    assert "revoked" in body["detail"]
    problem(caller.post("/api/tasks", new_task(repo)), 401, "not_authenticated")
    assert not Task.objects.exists()


def test_expired_token_is_401(world, repo):
    issued = access_token_create(username="alice", expires_at=timezone.now() + timedelta(hours=1))
    caller = Caller(issued.secret)
    assert caller.get("/api/tasks").status_code == 200
    with time_machine.travel(timezone.now() + timedelta(hours=2), tick=False):
        body = problem(caller.get("/api/tasks"), 401, "not_authenticated")
        assert "expired" in body["detail"]
        problem(caller.post("/api/tasks", new_task(repo)), 401, "not_authenticated")
    assert not Task.objects.exists()


def test_user_without_org_membership_is_403(world, task, repo):
    get_user_model().objects.create_user(username="drifter")
    caller = Caller(access_token_create(username="drifter").secret)
    problem(caller.get("/api/tasks"), 403, "forbidden")
    problem(caller.get(f"/api/tasks/{task.public_id}"), 403, "forbidden")
    problem(caller.post("/api/tasks", new_task(repo)), 403, "forbidden")
    assert Task.objects.count() == 1


@pytest.mark.parametrize("verb", ["PUT", "PATCH", "DELETE"])
def test_unsupported_methods_are_405(world, task, verb):
    person = world.person()
    problem(person.method(verb, "/api/tasks"), 405, "method_not_allowed")
    if verb != "PATCH":  # PATCH edits a task (test_task_edit_api.py)
        problem(person.method(verb, f"/api/tasks/{task.public_id}"), 405, "method_not_allowed")
    problem(person.post(f"/api/tasks/{task.public_id}", {}), 405, "method_not_allowed")
    assert Task.objects.get(pk=task.pk).status == TaskStatus.READY
    assert Task.objects.count() == 1


def test_list_tasks_with_empty_status_is_unfiltered(world, repo):
    # docs/api.md: an empty query parameter counts as absent.
    task = world.task(repo=repo)
    body = world.person().get("/api/tasks?status=").json()
    assert [t["id"] for t in body["data"]] == [task.public_id]
    body = world.person().get("/api/tasks?status=done&status=ready").json()
    assert [t["id"] for t in body["data"]] == [task.public_id]
