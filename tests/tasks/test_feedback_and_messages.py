"""Reopen with feedback and messages to a running task (docs/contract.md §6): kept in the
timeline and the task document, delivered in the next bundle and heartbeat (each
message once)."""

from __future__ import annotations

import re
import threading
from typing import Any

import pytest
from django.db import connection

from corpus.models import Document
from tasks.models import Event, MessageKind, TaskMessage, TaskStatus
from tests.helpers import Caller, problem

NOTE_ID = r"^note_[0-9a-f]{32}$"


def reopen(person: Caller, task: Any, body: dict[str, Any] | None = None) -> Any:
    return person.post(f"/api/tasks/{task.public_id}/reopen", body or {})


def send(person: Caller, task: Any, text: str, **extra: Any) -> Any:
    return person.post(f"/api/tasks/{task.public_id}/messages", {"text": text}, **extra)


def task_document(task: Any) -> str:
    return Document.objects.get(kind="task", task_ref=task.public_id).body


def timeline(task: Any, kind: str) -> list[dict[str, Any]]:
    rows = Event.objects.filter(task=task, name="task.timeline").order_by("seq")
    return [e.payload for e in rows if e.payload["kind"] == kind]


@pytest.fixture
def finished(world, task, harness, claimed) -> Any:
    response = harness.result(task.public_id, claimed["run_id"], "no_changes")
    assert response.status_code == 200, response.content
    return task


# --- reopen with feedback ---------------------------------------------------------------


def test_reopen_with_feedback_reaches_the_next_bundle(world, finished, harness):
    task = finished
    text = "Also handle HEAD requests."
    response = reopen(world.person(), task, {"feedback": text})
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "ready"
    [given] = TaskMessage.objects.filter(task=task)
    assert (given.kind, given.text, given.author) == (MessageKind.FEEDBACK, text, world.user)
    [entry] = timeline(task, "reopen")
    assert entry["feedback"] == text and entry["message_id"] == given.public_id
    assert entry["summary"] == f"Task reopened with feedback: {text}"
    assert entry["actor"] == {"type": "user", "username": "alice"}
    assert "**Feedback on reopen** (alice, " in task_document(task)
    assert text in task_document(task)
    bundle = harness.claim(task.public_id).json()["bundle"]
    [item] = bundle["feedback"]
    assert item == {
        "feedback_id": given.public_id,
        "text": text,
        "given_by": "alice",
        "given_at": item["given_at"],
    }
    assert item["given_at"].endswith("Z")
    # The preview shows the same list.
    preview = harness.get(f"/api/harness/tasks/{task.public_id}/execution").json()
    assert preview["feedback"] == bundle["feedback"]


def test_every_later_bundle_lists_all_feedback_oldest_first(world, finished, harness):
    task = finished
    reopen(world.person(), task, {"feedback": "First"})
    run = harness.claim(task.public_id).json()["run_id"]
    harness.result(task.public_id, run, "no_changes")
    reopen(world.person(), task, {"feedback": "Second"})
    bundle = harness.claim(task.public_id).json()["bundle"]
    assert [f["text"] for f in bundle["feedback"]] == ["First", "Second"]


def test_reopen_without_feedback_stores_none(world, finished, harness):
    for body in ({}, {"feedback": ""}, {"feedback": "   "}):
        assert reopen(world.person(), finished, body).status_code == 200
        run = harness.claim(finished.public_id).json()
        assert run["bundle"]["feedback"] == []
        harness.result(finished.public_id, run["run_id"], "no_changes")
    assert not TaskMessage.objects.exists()
    assert [e["summary"] for e in timeline(finished, "reopen")] == ["Task reopened"] * 3


def test_reopen_refuses_bad_bodies_and_changes_nothing(world, finished):
    person = world.person()
    for body, field in (
        ({"feedback": 5}, "feedback"),
        ({"feedback": "x" * 4001}, "feedback"),
        ({"feedbak": "typo"}, "feedbak"),
    ):
        assert problem(reopen(person, finished, body), 400, "validation_error")["errors"][field]
    finished.refresh_from_db()
    assert finished.status == TaskStatus.NO_CHANGES
    assert not TaskMessage.objects.exists()


def test_reopen_with_feedback_of_a_running_task_is_409_and_stores_nothing(world, task, claimed):
    problem(reopen(world.person(), task, {"feedback": "x"}), 409, "invalid_transition")
    assert not TaskMessage.objects.exists()


# --- messages -----------------------------------------------------------------------------


def test_a_message_reaches_the_next_heartbeat_once(world, task, harness, claimed):
    response = send(world.person(), task, "Use the staging database, not prod.")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["task_id"] == task.public_id and body["sent_by"] == "alice"
    assert body["text"] == "Use the staging database, not prod."
    assert body["delivered_at"] is None and body["delivered_run_id"] is None
    assert re.match(NOTE_ID, body["message_id"])
    run_id = claimed["run_id"]
    first = harness.heartbeat(task.public_id, run_id).json()
    assert [(m["message_id"], m["text"], m["sent_by"]) for m in first["messages"]] == [
        (body["message_id"], "Use the staging database, not prod.", "alice")
    ]
    assert harness.heartbeat(task.public_id, run_id).json()["messages"] == []
    stored = TaskMessage.objects.get(public_id=body["message_id"])
    assert stored.delivered_run.public_id == run_id and stored.delivered_at is not None
    [entry] = timeline(task, "message")
    assert entry["summary"] == "Use the staging database, not prod."
    assert entry["message_id"] == body["message_id"]
    assert "**Message** (alice, " in task_document(task)


def test_messages_come_oldest_first_in_one_heartbeat(world, task, harness, claimed):
    for text in ("one", "two", "three"):
        assert send(world.person(), task, text).status_code == 201
    beat = harness.heartbeat(task.public_id, claimed["run_id"]).json()
    assert [m["text"] for m in beat["messages"]] == ["one", "two", "three"]


def test_a_lost_heartbeat_response_is_recovered_with_the_same_idempotency_key(
    world, task, harness, claimed
):
    send(world.person(), task, "Only once, but not lost")
    url, body = harness.url(task.public_id, "heartbeat"), {"run_id": claimed["run_id"]}
    first = harness.post(url, body, HTTP_IDEMPOTENCY_KEY="beat-1")
    # The harness never read `first`: it retries the same request with the same key.
    retry = harness.post(url, body, HTTP_IDEMPOTENCY_KEY="beat-1")
    assert retry["Idempotent-Replayed"] == "true"
    assert retry.json()["messages"] == first.json()["messages"]
    assert [m["text"] for m in retry.json()["messages"]] == ["Only once, but not lost"]
    fresh = harness.post(url, body, HTTP_IDEMPOTENCY_KEY="beat-2")
    assert fresh.json()["messages"] == []


@pytest.mark.django_db(transaction=True)
def test_two_racing_heartbeats_never_both_get_a_message(world, task, harness, claimed):
    for n in range(5):
        send(world.person(), task, f"message {n}")
    got: list[list[str]] = []
    barrier = threading.Barrier(4)

    def beat() -> None:
        try:
            barrier.wait()
            response = harness.heartbeat(task.public_id, claimed["run_id"])
            assert response.status_code == 200, response.content
            got.append([m["message_id"] for m in response.json()["messages"]])
        finally:
            connection.close()

    threads = [threading.Thread(target=beat) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    delivered = [m for batch in got for m in batch]
    assert len(got) == 4
    assert sorted(delivered) == sorted(TaskMessage.objects.values_list("public_id", flat=True))
    assert len(set(delivered)) == len(delivered) == 5


def test_a_message_to_a_task_not_in_progress_is_409(world, task, harness):
    person = world.person()
    problem(send(person, task, "ready"), 409, "task_not_in_progress")  # ready
    run = harness.claim(task.public_id).json()["run_id"]
    harness.interrupt(task.public_id, run, "Q?")
    problem(send(person, task, "paused"), 409, "task_not_in_progress")
    harness.result(task.public_id, run, "no_changes")
    problem(send(person, task, "closed"), 409, "task_not_in_progress")
    assert not TaskMessage.objects.exists()
    assert timeline(task, "message") == []


def test_messages_refuse_bad_bodies(world, task, claimed):
    person = world.person()
    for body, field in (
        ({}, "text"),
        ({"text": ""}, "text"),
        ({"text": 1}, "text"),
        ({"text": "x" * 4001}, "text"),
        ({"text": "ok", "extra": 1}, "extra"),
    ):
        response = person.post(f"/api/tasks/{task.public_id}/messages", body)
        assert problem(response, 400, "validation_error")["errors"][field]
    assert not TaskMessage.objects.exists()


def test_messages_of_another_org_unauthenticated_and_other_methods(world, task, claimed):
    problem(send(world.outsider(), task, "hi"), 404, "not_found")
    problem(send(Caller(None), task, "hi"), 401, "not_authenticated")
    problem(send(Caller(world.key), task, "hi"), 401, "not_authenticated")
    response = world.person().get(f"/api/tasks/{task.public_id}/messages")
    problem(response, 405, "method_not_allowed")
    assert not TaskMessage.objects.exists()


def test_a_message_retried_with_its_idempotency_key_is_stored_once(world, task, claimed):
    person = world.person()
    first = send(person, task, "once", HTTP_IDEMPOTENCY_KEY="m-1")
    again = send(person, task, "once", HTTP_IDEMPOTENCY_KEY="m-1")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert TaskMessage.objects.count() == 1


def test_an_undelivered_message_goes_to_the_next_run(world, task, harness, claimed):
    send(world.person(), task, "for whoever works on it")
    world.person().post(f"/api/tasks/{task.public_id}/release", {})
    rival = world.rival_harness()
    run = rival.claim(task.public_id).json()["run_id"]
    beat = rival.heartbeat(task.public_id, run).json()
    assert [m["text"] for m in beat["messages"]] == ["for whoever works on it"]
