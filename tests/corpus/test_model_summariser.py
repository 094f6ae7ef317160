"""The ``openai`` summariser (CONTRACT.md §7) against a real local HTTP server that
answers like the chat-completions API: the outline writes the memory in the result's
transaction, the model is asked after commit and its memory becomes the next version;
every failure leaves the outline memory and the record says why."""

from __future__ import annotations

import time
from typing import Any

import pytest

from corpus.compaction import OutlineSummariser, WorkingNote
from corpus.compaction.model import OpenAISummariser
from corpus.models import Compaction, Document
from tests.corpus.fake_openai import completion, fake_openai
from tests.web.test_pages import signed_in

pytestmark = pytest.mark.django_db(transaction=True)
BUDGET = 2048
MEMORY = "# Memory\n\n- choice 0: use fixture 0\n- [ ] follow up 0\n"


@pytest.fixture
def model(settings: Any) -> Any:
    with fake_openai() as fake:
        settings.ETHER_WORKING_BUDGET_BYTES = BUDGET
        settings.ETHER_SUMMARISER = "openai"
        settings.ETHER_SUMMARISER_URL = fake.url
        settings.ETHER_SUMMARISER_MODEL = "test-model"
        settings.ETHER_SUMMARISER_API_KEY = "sk-test-123"
        fake.body = completion(MEMORY)
        yield fake


def note(n: int) -> str:
    return f"# Run {n}\n\n## Decisions\n\n- choice {n}: use fixture {n}\n\n" + f"words {n} " * 60


def four_runs(world: Any, task: Any) -> None:
    harness = world.harness()
    for n in range(4):
        run_id = harness.claim(task.public_id).json()["run_id"]
        response = harness.result(task.public_id, run_id, "no_changes", working_summary=note(n))
        assert response.status_code == 200, response.content
        if n < 3:
            assert world.person().post(f"/api/tasks/{task.public_id}/reopen").status_code == 200


def settle(task: Any, count: int, timeout: float = 15.0) -> list[Compaction]:
    """The task's compactions once ``count`` exist and the last one has had its answer."""
    deadline = time.monotonic() + timeout
    while True:
        rows = list(Compaction.objects.filter(task_ref=task.public_id).order_by("pk"))
        done = rows and (rows[-1].summariser.startswith("openai") or rows[-1].fallback)
        if len(rows) >= count and done:
            return rows
        assert time.monotonic() < deadline, [(r.summariser, r.fallback) for r in rows]
        time.sleep(0.05)


def test_the_models_memory_becomes_the_next_version(world, task, model):
    four_runs(world, task)
    rows = settle(task, 2)
    outline, asked = rows[-2], rows[-1]
    assert outline.summariser == OutlineSummariser.name
    assert asked.summariser == "openai:test-model"
    assert asked.inputs == outline.inputs
    assert (asked.kept_bytes, asked.dropped_bytes, asked.dropped) == (None, None, [])
    memory = Document.objects.get(kind="memory", task_ref=task.public_id)
    assert memory.body == MEMORY
    assert (asked.memory_version, memory.version) == (outline.memory_version + 1,) * 2
    # The request: the model, the key, and every folded note in the user message.
    (request,) = model.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["authorization"] == "Bearer sk-test-123"
    body = request["json"]
    assert body["model"] == "test-model"
    assert f"at most {asked.budget_bytes} bytes" in body["messages"][0]["content"]
    for row in asked.inputs:
        assert f"## {row['path']}" in body["messages"][1]["content"]
    assert "- choice 0: use fixture 0" in body["messages"][1]["content"]
    # The next harness reads the model's memory.
    response = world.harness().get(f"/api/harness/context?task_id={task.public_id}&slices=working")
    assert response.json()["slices"][0]["docs"][0]["path"] == memory.path


@pytest.mark.parametrize(
    ("status", "body", "why"),
    [
        (500, {"error": {"message": "boom"}}, "answered 500"),
        (429, {"error": {"message": "Rate limit reached"}}, "answered 429"),
        (200, "not json", "answered no chat completion"),
        (200, {"choices": []}, "answered no chat completion"),
        (200, completion("   "), "empty memory"),
        (200, completion("x" * 5000), "past the budget"),
    ],
)
def test_a_failing_model_leaves_the_outline_memory_and_says_why(
    world, task, model, status, body, why
):
    model.status, model.body = status, body
    four_runs(world, task)
    rows = settle(task, 1)
    last = rows[-1]
    assert last.summariser == OutlineSummariser.name
    assert why in last.fallback
    assert last.fallback.startswith("openai:test-model failed: ")
    assert last.fallback.endswith("the outline memory stands")
    memory = Document.objects.get(kind="memory", task_ref=task.public_id)
    assert memory.version == last.memory_version  # nothing written over it
    assert "- choice 0: use fixture 0" in memory.body
    # The working-memory page says so.
    html = signed_in(world.user).get(f"/tasks/{task.public_id}/compaction").content.decode()
    assert "Fallback:" in html and why in html


def test_an_unreachable_model_is_a_recorded_fallback(world, task, model, settings):
    settings.ETHER_SUMMARISER_URL = "http://127.0.0.1:9/v1"  # discard port: refused
    four_runs(world, task)
    last = settle(task, 1)[-1]
    assert "no answer from http://127.0.0.1:9/v1/chat/completions" in last.fallback


def test_summariser_is_usable_on_its_own():
    with fake_openai() as fake:
        fake.body = completion("# M\n")
        summary = OpenAISummariser(url=fake.url + "/chat/completions", model="m").summarise(
            [WorkingNote("working/run_a.md", "- x")], 100
        )
        assert summary.text == "# M\n"
        assert fake.requests[0]["authorization"] == ""  # no key, no header
