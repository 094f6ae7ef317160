"""``manage.py demo_harness --next`` against a real daphne: the harness starts first and
long-polls claim-next; a task created afterwards (as the browser creates it) is found,
claimed and delivered with no id copied by hand."""

from __future__ import annotations

import threading
import time
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from delivery.models import Delivery
from tasks.models import Run, RunStatus, Task, TaskStatus
from tests import factories
from tests.servers import daphne

pytestmark = pytest.mark.django_db(transaction=True)


def next_flags(world, server, tmp_path, *extra: str) -> list[str]:
    return [
        "--next",
        "--base-url",
        server.http,
        "--key",
        world.key,
        "--app-id",
        world.app.app_id,
        "--pause",
        "0",
        "--secrets-file",
        str(tmp_path / "absent.json"),
        *extra,
    ]


def test_demo_harness_next_picks_up_a_task_created_after_it_started(world, tmp_path):
    repo = factories.make_repo(world.org, "acme/widgets")
    out = StringIO()
    failures: list[BaseException] = []
    with daphne(tmp_path) as server:

        def harness() -> None:
            try:
                call_command(
                    "demo_harness",
                    *next_flags(world, server, tmp_path, "--give-up", "8"),
                    stdout=out,
                )
            except BaseException as error:  # reported below, in the test's thread
                failures.append(error)

        thread = threading.Thread(target=harness, daemon=True)
        thread.start()
        time.sleep(2.0)
        assert thread.is_alive()  # waiting: nothing is ready yet
        assert "Waiting for a ready task" in out.getvalue()
        status, created = server.call(
            "POST",
            "/api/tasks",
            world.token,
            {
                "title": "Add a health endpoint",
                "prompt": "GET /healthz answers 200.",
                "definition_of_done": ["GET /healthz answers 200"],
                "project": repo.project.slug,
                "repo": repo.full_name,
            },
        )
        assert status == 201, created
        thread.join(timeout=60)
        assert not thread.is_alive(), out.getvalue()
    assert not failures, failures
    output = out.getvalue()
    task_id = created["id"]
    assert f"Task {task_id}: Add a health endpoint" in output
    assert f"Claimed as {world.app.app_id}" in output
    assert "Result submitted: task is now completed." in output
    assert "No task within" not in output  # --next alone: one task, then it stops
    task = Task.objects.get(public_id=task_id)
    assert task.status == TaskStatus.COMPLETED
    run = Run.objects.get(task=task)
    assert run.app == world.app and run.status == RunStatus.FINISHED
    assert Delivery.objects.get(task=task).status == "submitted"


def test_demo_harness_next_takes_tasks_one_after_another_oldest_first(world, tmp_path):
    first, second = world.task(title="first"), world.task(title="second")
    with daphne(tmp_path) as server:
        out = StringIO()
        call_command(
            "demo_harness",
            *next_flags(world, server, tmp_path, "--loop", "--give-up", "2"),
            stdout=out,
        )
    output = out.getvalue()
    assert output.index(f"Task {first.public_id}") < output.index(f"Task {second.public_id}")
    assert output.count("Result submitted") == 2
    assert "No task within 2 s; stopping." in output
    for task in (first, second):
        task.refresh_from_db()
        assert task.status == TaskStatus.COMPLETED


def test_demo_harness_next_gives_up_when_nothing_becomes_ready(world, tmp_path):
    with daphne(tmp_path) as server:
        started = time.monotonic()
        out = StringIO()
        call_command(
            "demo_harness", *next_flags(world, server, tmp_path, "--give-up", "2"), stdout=out
        )
        assert 1.9 <= time.monotonic() - started < 10
    assert "No task within 2 s; stopping." in out.getvalue()
    assert not Run.objects.exists()


def test_next_and_task_together_are_refused(world, tmp_path):
    with pytest.raises(CommandError, match="--task or --next"):
        call_command(
            "demo_harness",
            "--next",
            "--task",
            "task_" + "0" * 32,
            "--key",
            world.key,
            "--app-id",
            "builder",
            "--secrets-file",
            str(tmp_path / "absent.json"),
            stdout=StringIO(),
        )
