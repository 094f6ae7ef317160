"""Issue 12 on the result route: a hostile ``working_summary`` is rendered before the
result's transaction, so it never holds the write lock other orgs are waiting for.

Seen before the fix: a 9,000-character summary of ``[`` rendered for 21 s inside the
result's transaction (on SQLite, the one write lock) and other orgs' writes answered 503.
No test here measures time; the held render below makes the overlap certain instead.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connection

from delivery.models import Delivery
from tasks.models import Result
from tests.corpus.test_markdown_cost import RenderSpy
from tests.helpers import problem, stored

HOSTILE = "[" * 9_000


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> RenderSpy:
    return RenderSpy(monkeypatch)


def submit_no_changes(harness: Any, task: Any, run_id: str, *, keyed: bool, **fields: Any) -> Any:
    data = {"run_id": run_id, "status": "no_changes", "agent_status": "done"}
    data["no_changes_reason"] = "Already fixed upstream."
    data.update(fields)
    extra = {"HTTP_IDEMPOTENCY_KEY": f"result-{keyed}"} if keyed else {}
    return harness.post(harness.url(task.public_id, "result"), data, **extra)


def summary_block(task: Any) -> dict[str, Any]:
    delivery = Delivery.objects.get(task=task)
    return next(block for block in delivery.blocks if block["type"] == "summary")


def test_result_with_a_9000_bracket_summary_is_delivered_with_its_html(task, harness, claimed):
    response = harness.result(task.public_id, claimed["run_id"], working_summary=HOSTILE)
    assert response.status_code == 200, response.content[:500]
    block = summary_block(task)
    assert block["markdown"] == HOSTILE
    assert block["html"] == "<p>" + HOSTILE + "</p>"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("keyed", [False, True], ids=["plain", "idempotency-key"])
def test_other_orgs_write_goes_on_while_a_result_summary_renders(
    world, task, harness, claimed, spy, keyed
):
    """The summary's render is held open until another org has written. Rendered inside
    the result's transaction, as before the fix, that write waits out SQLite's busy
    timeout and answers 503."""
    rendering, other_done = threading.Event(), threading.Event()

    def hold(text: str) -> None:
        if text == HOSTILE:
            rendering.set()
            other_done.wait(timeout=30)

    spy.hook = hold
    answers: dict[str, Any] = {}

    def submit() -> None:
        try:
            answers["result"] = submit_no_changes(
                harness, task, claimed["run_id"], keyed=keyed, working_summary=HOSTILE
            )
        finally:
            connection.close()

    thread = threading.Thread(target=submit)
    thread.start()
    try:
        assert rendering.wait(timeout=30), "the summary never rendered"
        answers["other"] = world.outsider().post(
            "/api/context/docs", {"kind": "profile", "body": "Mine."}
        )
    finally:
        other_done.set()
        thread.join(timeout=60)
    assert not thread.is_alive()
    assert answers["other"].status_code == 201, answers["other"].content[:500]
    assert answers["result"].status_code == 200, answers["result"].content[:500]
    assert summary_block(task)["html"] == "<p>" + HOSTILE + "</p>"
    assert spy.inside_transactions() == []
    assert spy.count(HOSTILE) == 1


@pytest.mark.parametrize("keyed", [False, True], ids=["plain", "idempotency-key"])
def test_summary_over_the_render_limit_is_413_and_stores_nothing(
    task, harness, claimed, settings, keyed
):
    settings.ETHER_MAX_RENDER_BYTES = 1024
    before = stored()
    response = submit_no_changes(
        harness, task, claimed["run_id"], keyed=keyed, working_summary="[" * 1025
    )
    body = problem(response, 413, "markdown_too_large")
    assert body["limit"] == 1024
    assert stored() == before
    assert not Result.objects.exists()


def test_no_changes_reason_over_the_limit_is_413_too(task, harness, claimed, settings):
    settings.ETHER_MAX_RENDER_BYTES = 1024
    response = harness.result(task.public_id, claimed["run_id"], no_changes_reason="x" * 2000)
    problem(response, 413, "markdown_too_large")
    assert not Result.objects.exists()
