from __future__ import annotations

import json
import sqlite3

import pytest
from django.db import connection

from api.models import IdempotencyRecord
from tasks.models import Event, Run, Task, TaskStatus
from tests import factories
from tests.helpers import Caller, problem


def create_body(repo, **fields) -> dict:
    body = {
        "title": "Add a health check",
        "prompt": "GET /healthz answers 200.",
        "definition_of_done": ["It answers 200"],
        "project": repo.project.slug,
        "repo": repo.full_name,
    }
    body.update(fields)
    return body


# --- 413 ------------------------------------------------------------------------------


def test_body_over_the_limit_is_413_and_stores_nothing(world, settings):
    settings.ETHER_MAX_BODY_BYTES = 1024
    repo = factories.make_repo(world.org, "acme/widgets")
    response = world.person().post("/api/tasks", create_body(repo, prompt="x" * 2000))
    body = problem(response, 413, "payload_too_large")
    assert "1024" in body["detail"]
    assert not Task.objects.exists()
    assert not Event.objects.exists()


def test_body_at_the_limit_is_accepted(world, settings):
    settings.ETHER_MAX_BODY_BYTES = 1024
    repo = factories.make_repo(world.org, "acme/widgets")
    data = create_body(repo, prompt="")
    filler = 1024 - len(json.dumps(data).encode())
    data["prompt"] = "x" * filler
    assert len(json.dumps(data).encode()) == 1024
    response = world.person().post("/api/tasks", data)
    assert response.status_code == 201, response.content
    assert Task.objects.get().prompt == "x" * filler


def test_oversized_harness_post_is_413_and_stores_nothing(world, task, harness, claimed, settings):
    settings.ETHER_MAX_BODY_BYTES = 1024
    response = harness.step(task.public_id, claimed["run_id"], "x" * 3000)
    problem(response, 413, "payload_too_large")
    assert not Event.objects.filter(name="os.harness.step").exists()


def test_oversized_body_with_idempotency_key_stores_no_record(world, task, harness, settings):
    settings.ETHER_MAX_BODY_BYTES = 1024
    url = harness.url(task.public_id, "claim")
    response = harness.post(
        url, raw='{"app_id": "builder", "pad": "' + "x" * 2000 + '"}', HTTP_IDEMPOTENCY_KEY="k"
    )
    problem(response, 413, "payload_too_large")
    assert not Run.objects.exists()
    assert not IdempotencyRecord.objects.exists()
    assert Task.objects.get(pk=task.pk).status == TaskStatus.READY


def test_unparseable_content_length_is_400(world):
    response = world.person().get("/api/tasks", CONTENT_LENGTH="lots")
    problem(response, 400, "bad_request")


# --- 404 for unknown API paths --------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/api/nope",
        "/api/",
        "/api",
        "/api/tasks/",
        "/api/harness/nope",
        "/api/harness/tasks/task_x/nope",
        "/api/tasks/task_x/answer/extra",
        "/v1/nope",
    ],
)
def test_unknown_api_paths_are_404_problem_documents(world, path):
    person = world.person()
    problem(person.get(path), 404, "not_found")
    problem(person.post(path, {"title": "x"}), 404, "not_found")
    problem(Caller(None).get(path), 404, "not_found")
    assert not Task.objects.exists()


def test_unknown_non_api_path_is_not_a_problem_document(world):
    response = Caller(None).get("/no-such-page")
    assert response.status_code == 404
    assert not response["Content-Type"].startswith("application/problem+json")


# --- 415 ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"]
)
def test_non_json_body_is_415_and_stores_nothing(world, task, content_type):
    repo = factories.make_repo(world.org, "acme/widgets")
    person = world.person()
    response = person.post("/api/tasks", raw="title=x", content_type=content_type)
    problem(response, 415, "unsupported_media_type")
    problem(
        world.harness().post(
            f"/api/harness/tasks/{task.public_id}/claim",
            raw="app_id=builder",
            content_type=content_type,
        ),
        415,
        "unsupported_media_type",
    )
    problem(
        person.post(f"/api/tasks/{task.public_id}/cancel", raw="x", content_type=content_type),
        415,
        "unsupported_media_type",
    )
    assert Task.objects.count() == 1
    assert not Task.objects.filter(repo=repo).exists()
    assert not Run.objects.exists()
    assert Task.objects.get(pk=task.pk).status == TaskStatus.READY


# --- 503 when the database stays locked -----------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_locked_database_is_503_with_retry_after_and_stores_nothing(world, settings):
    if connection.vendor != "sqlite":
        pytest.skip("holds SQLite's single write lock")
    task = world.task()
    harness = world.harness()
    options = connection.settings_dict["OPTIONS"]
    saved = dict(options)
    locker = sqlite3.connect(settings.DATABASES["default"]["NAME"], isolation_level=None)
    try:
        locker.execute("BEGIN IMMEDIATE")
        options["timeout"] = 0.2
        connection.close()
        response = harness.claim(task.public_id)
        body = problem(response, 503, "database_unavailable")
        assert "nothing was changed" in body["detail"]
        assert int(response["Retry-After"]) >= 1
        keyed = harness.claim(task.public_id, HTTP_IDEMPOTENCY_KEY="during-lock")
        problem(keyed, 503, "database_unavailable")
        assert int(keyed["Retry-After"]) >= 1
    finally:
        locker.rollback()
        locker.close()
        options.clear()
        options.update(saved)
        connection.close()
    assert not Run.objects.exists()
    assert not IdempotencyRecord.objects.exists()
    task.refresh_from_db()
    assert task.status == TaskStatus.READY and task.lease_epoch == 0
    assert [e.payload["kind"] for e in Event.objects.filter(name="task.timeline")] == ["created"]
    # Nothing was remembered for the key: once the lock is gone the retry really runs.
    retry = harness.claim(task.public_id, HTTP_IDEMPOTENCY_KEY="during-lock")
    assert retry.status_code == 200
    assert not retry.has_header("Idempotent-Replayed")
    assert Run.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_locked_row_on_postgres_is_503_with_retry_after_and_stores_nothing(world):
    if connection.vendor != "postgresql":
        pytest.skip("holds a Postgres row lock")
    import psycopg

    task = world.task()
    harness = world.harness()
    params = connection.get_connection_params()
    params.pop("options", None)
    params.pop("cursor_factory", None)
    params.pop("context", None)
    with psycopg.connect(**params) as locker:
        # Another transaction holds the task row, as a stuck writer would.
        locker.execute("SELECT id FROM tasks_task WHERE id = %s FOR UPDATE", [task.pk])
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '200ms'")
        try:
            response = harness.claim(task.public_id)
            problem(response, 503, "database_unavailable")
            assert int(response["Retry-After"]) >= 1
        finally:
            locker.rollback()
            connection.close()
    assert not Run.objects.exists()
    task.refresh_from_db()
    assert task.status == TaskStatus.READY and task.lease_epoch == 0
    assert harness.claim(task.public_id).status_code == 200
