"""Interrupt `choices` bind the answer unless `allow_free_text` (docs/contract.md §6)."""

from __future__ import annotations

from typing import Any

from tasks.models import Event, Interrupt, TaskStatus
from tests.helpers import problem


def answer_url(task: Any) -> str:
    return f"/api/tasks/{task.public_id}/answer"


def ask(harness: Any, task: Any, claimed: Any, **body: Any) -> dict[str, Any]:
    response = harness.interrupt(task.public_id, claimed["run_id"], "Which DB?", **body)
    assert response.status_code == 200, response.content
    return response.json()


def test_an_answer_outside_the_choices_is_400_naming_them(world, task, harness, claimed):
    asked = ask(harness, task, claimed, choices=["SQLite", "Postgres"])
    assert asked["allow_free_text"] is False
    response = world.person().post(answer_url(task), {"answer": "MySQL"})
    body = problem(response, 400, "validation_error")
    assert body["errors"]["answer"] == [
        "Must be one of the question's choices: 'SQLite', 'Postgres'."
    ]
    assert "'SQLite', 'Postgres'" in body["detail"]
    # Nothing changed: still paused, still open, no answer on the timeline.
    interrupt = Interrupt.objects.get(task=task)
    assert interrupt.answer is None and interrupt.answered_at is None
    task.refresh_from_db()
    assert task.status == TaskStatus.PAUSED
    assert not Event.objects.filter(task=task, payload__kind="answer").exists()


def test_a_choice_is_matched_exactly(world, task, harness, claimed):
    ask(harness, task, claimed, choices=["SQLite", "Postgres"])
    problem(world.person().post(answer_url(task), {"answer": "postgres"}), 400, "validation_error")
    response = world.person().post(answer_url(task), {"answer": "Postgres"})
    assert response.status_code == 200, response.content
    assert Interrupt.objects.get(task=task).answer == "Postgres"


def test_allow_free_text_takes_any_answer(world, task, harness, claimed):
    asked = ask(harness, task, claimed, choices=["SQLite", "Postgres"], allow_free_text=True)
    assert asked["allow_free_text"] is True
    interrupt = Interrupt.objects.get(task=task)
    assert interrupt.allow_free_text is True
    event = Event.objects.get(task=task, name="task.interrupted")
    assert event.payload["allow_free_text"] is True
    response = world.person().post(answer_url(task), {"answer": "Whatever is on the box"})
    assert response.status_code == 200, response.content
    interrupt.refresh_from_db()
    assert interrupt.answer == "Whatever is on the box"


def test_a_question_without_choices_takes_any_answer(world, task, harness, claimed):
    ask(harness, task, claimed)
    response = world.person().post(answer_url(task), {"answer": "Anything"})
    assert response.status_code == 200, response.content


def test_the_harness_reads_allow_free_text_with_the_question(world, task, harness, claimed):
    ask(harness, task, claimed, choices=["a", "b"])
    world.person().post(answer_url(task), {"answer": "b"})
    beat = harness.heartbeat(task.public_id, claimed["run_id"]).json()
    assert [(a["choices"], a["allow_free_text"], a["answer"]) for a in beat["answers"]] == [
        (["a", "b"], False, "b")
    ]


def test_allow_free_text_must_be_a_boolean(task, harness, claimed):
    response = harness.interrupt(
        task.public_id, claimed["run_id"], "Q?", choices=["a"], allow_free_text="yes"
    )
    assert problem(response, 400, "validation_error")["errors"]["allow_free_text"]
    assert not Interrupt.objects.exists()


def test_repeated_choices_are_400(task, harness, claimed):
    response = harness.interrupt(task.public_id, claimed["run_id"], "Q?", choices=["a", "a"])
    assert problem(response, 400, "validation_error")["errors"]["choices"]
    assert not Interrupt.objects.exists()
