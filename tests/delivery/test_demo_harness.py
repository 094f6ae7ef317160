"""manage.py demo_harness, written on ether_client, against a real daphne over HTTP."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from delivery.models import Delivery
from tasks.models import Interrupt, Run, RunStatus, Step, TaskStatus
from tasks.services import task_cancel
from tests.servers import Server, daphne, free_port

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    """A daphne on this test's database."""
    with daphne(tmp_path) as running:
        yield running


DOD = ["GET /healthz answers 200", "The response includes the build version", "A test covers it"]


def demo(*args: str) -> str:
    out = StringIO()
    call_command("demo_harness", *args, stdout=out)
    return out.getvalue()


def flags(world: Any, task: Any, base_url: str, tmp_path: Any) -> list[str]:
    return [
        "--task",
        task.public_id,
        "--base-url",
        base_url,
        "--key",
        world.key,
        "--app-id",
        world.app.app_id,
        "--pause",
        "0",
        "--secrets-file",
        str(tmp_path / "absent.json"),
    ]


def test_demo_harness_claims_narrates_and_delivers(world, server, tmp_path):
    task = world.task(definition_of_done=DOD, branch_scope="ether/*")
    output = demo(*flags(world, task, server.http, tmp_path))
    assert f"Claimed as {world.app.app_id}" in output
    assert f"{server.http}/tasks/{task.public_id}" in output
    assert "Result submitted: task is now completed." in output
    task.refresh_from_db()
    assert task.status == TaskStatus.COMPLETED
    run = Run.objects.get(task=task)
    assert run.status == RunStatus.FINISHED and run.checkpoint["branch"].startswith("ether/demo-")
    assert 4 <= Step.objects.filter(run=run).count() <= 6
    delivery = Delivery.objects.get(task=task)
    assert (delivery.status, delivery.version) == ("submitted", 1)
    blocks = {b["type"]: b for b in delivery.blocks}
    assert blocks["hero"]["pr"]["url"].startswith(task.repo.url + "/pull/")
    assert blocks["hero"]["pr"]["branch"] == run.checkpoint["branch"]
    assert [i["status"] for i in blocks["checklist"]["items"]] == ["mentioned"] * 3
    assert blocks["outcome"]["verdict"]["checklist_mentioned"] == 3


def answer_when_asked(server: Server, token: str, task_id: str, answer: str) -> threading.Thread:
    """A person on the task page: waits for the open question, then answers it over HTTP."""

    def person() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if server.call("GET", f"/api/tasks/{task_id}", token)[1]["open_question"]:
                server.call("POST", f"/api/tasks/{task_id}/answer", token, {"answer": answer})
                return
            time.sleep(0.05)

    thread = threading.Thread(target=person, daemon=True)
    thread.start()
    return thread


def test_demo_harness_asks_waits_for_the_answer_and_continues(world, server, tmp_path):
    task = world.task(definition_of_done=DOD)
    # The defaults come from the file seed_demo writes.
    secrets_file = tmp_path / "demo.json"
    secrets_file.write_text(
        json.dumps(
            {
                "task_id": task.public_id,
                "harness_key": world.key,
                "app_id": world.app.app_id,
                "base_url": server.http,
            }
        )
    )
    person = answer_when_asked(server, world.token, task.public_id, "Only the build version")
    output = demo("--ask", "--pause", "0", "--secrets-file", str(secrets_file))
    person.join(timeout=5)
    assert "Waiting for your answer" in output
    assert "[answer] Only the build version" in output
    interrupt = Interrupt.objects.get(task=task)
    assert interrupt.answer == "Only the build version" and interrupt.answered_by == world.user
    task.refresh_from_db()
    assert task.status == TaskStatus.COMPLETED
    messages = list(Step.objects.filter(task=task).values_list("user_message", flat=True))
    assert "Got your answer: Only the build version" in messages
    delivery = Delivery.objects.get(task=task)
    summary = next(b for b in delivery.blocks if b["type"] == "summary")
    assert "Only the build version" in summary["markdown"]


def test_demo_harness_without_a_server_says_so(world, tmp_path):
    task = world.task()
    base_url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(CommandError, match="Is the server running"):
        demo(*flags(world, task, base_url, tmp_path))


def test_demo_harness_with_a_wrong_key_says_so(world, server, tmp_path):
    task = world.task()
    args = flags(world, task, server.http, tmp_path)
    args[args.index("--key") + 1] = "eth_app_wrong"
    with pytest.raises(CommandError, match="refused the harness key"):
        demo(*args)
    assert not Run.objects.exists()


def test_demo_harness_on_a_closed_task_says_so(world, server, tmp_path):
    task = world.task()
    task_cancel(task=task, user=world.user)
    with pytest.raises(CommandError, match="already finished or cancelled"):
        demo(*flags(world, task, server.http, tmp_path))
    assert not Run.objects.exists()


def test_demo_harness_on_a_task_of_another_org_says_so(world, server, tmp_path):
    from tests import factories

    foreign = factories.make_task(world.outsider_org)
    with pytest.raises(CommandError, match="No task"):
        demo(*flags(world, foreign, server.http, tmp_path))


def test_demo_harness_without_secrets_or_flags_explains(db, tmp_path):
    with pytest.raises(CommandError, match="Missing --task, --key, --app-id"):
        demo("--secrets-file", str(tmp_path / "absent.json"))
