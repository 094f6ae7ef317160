"""Delivery payloads: composed with the result, typed blocks valid against their schemas,
versioned per task, and announced once as task.delivered / task.blocked / task.no_changes."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from delivery.blocks import ORDER, SCHEMAS
from delivery.models import Delivery
from delivery.services import delivery_result_submit
from tasks import events
from tasks.models import Event, Result, Run, RunStatus, TaskStatus
from tests.helpers import stored

DOD = ["GET /healthz answers 200", "The response includes the build version", "Docs updated"]
SUMMARY = (
    "## Done\n"
    "- `GET /healthz` answers 200 with JSON.\n"
    "- The response includes the build version.\n"
    "<script>alert(1)</script>\n"
)


def pr(task: Any, number: int = 7) -> dict[str, Any]:
    return {
        "number": number,
        "branch": "ether/healthz",
        "url": f"{task.repo.url}/pull/{number}",
        "title": "Add /healthz",
    }


def assert_valid(blocks: list[dict[str, Any]], status: str, *, with_pr: bool = True) -> None:
    """In ORDER; a submitted result without a PR has no ``checks`` block."""
    expected = [t for t in ORDER[status] if with_pr or t != "checks"]
    assert [b["type"] for b in blocks] == expected
    for block in blocks:
        jsonschema.validate(block, SCHEMAS[block["type"]])


def by_type(blocks: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {b["type"]: b for b in blocks}


def delivery_events(task: Any) -> list[Event]:
    names = ["task.delivered", "task.blocked", "task.no_changes"]
    return list(Event.objects.filter(task=task, name__in=names).order_by("seq"))


def test_schemas_are_valid_json_schemas():
    for schema in SCHEMAS.values():
        jsonschema.Draft202012Validator.check_schema(schema)


def test_submitted_payload_has_every_block_in_order(world, task, harness, claimed):
    task.definition_of_done = DOD
    task.save()
    run_id = claimed["run_id"]
    assert harness.step(task.public_id, run_id, "Reading the repository").status_code == 201
    assert harness.step(task.public_id, run_id, "Docs updated in README").status_code == 201
    response = harness.result(
        task.public_id,
        run_id,
        "submitted",
        agent_status="PR opened",
        artifact={"pr": pr(task)},
        working_summary=SUMMARY,
    )
    assert response.status_code == 200, response.content
    delivery = Delivery.objects.get(task=task)
    assert (delivery.version, delivery.status, delivery.run.public_id) == (1, "submitted", run_id)
    assert_valid(delivery.blocks, "submitted")
    blocks = by_type(delivery.blocks)
    outcome = blocks["outcome"]
    assert outcome["status"] == "submitted"
    assert outcome["headline"] == "Pull request #7 is ready for review"
    assert outcome["agent_status"] == "PR opened"
    verdict = outcome["verdict"]
    assert (verdict["scope"], verdict["pr_check"]) == ("verified", "not_configured")
    assert (verdict["checklist_mentioned"], verdict["checklist_total"]) == (3, 3)
    assert (
        "3 of 3 definition-of-done items mentioned by the harness (not verified)"
        in (verdict["summary"])
    )
    # Without a token nothing was asked of GitHub, and the payload says so.
    assert any("not verified on GitHub" in line for line in verdict["not_checked"])
    assert any("nothing was run or verified" in line for line in verdict["not_checked"])
    assert blocks["checks"]["state"] == "not_configured"
    assert {f["status"] for f in blocks["checks"]["facts"]} == {"not_checked"}
    assert blocks["hero"] == {
        "type": "hero",
        "title": task.title,
        "repository": {"name": task.repo.full_name, "url": task.repo.url},
        "branch_scope": "ether/*",
        "pr": {
            "number": 7,
            "url": f"{task.repo.url}/pull/7",
            "branch": "ether/healthz",
            "title": "Add /healthz",
        },
    }
    assert blocks["summary"]["markdown"] == SUMMARY.strip()
    assert "<h2>Done</h2>" in blocks["summary"]["html"]
    assert "<script" not in blocks["summary"]["html"]
    items = blocks["checklist"]["items"]
    assert [i["text"] for i in items] == DOD
    assert items[0]["evidence"].startswith("working summary, line 2:")
    steps = Run.objects.get(public_id=run_id).steps.order_by("seq")
    assert items[2]["evidence"] == f"step {steps[1].seq}: “Docs updated in README”"
    assert blocks["checklist"]["method"].startswith("Mention check")
    timeline = blocks["timeline"]
    assert [s["user_message"] for s in timeline["steps"]] == [
        "Reading the repository",
        "Docs updated in README",
    ]
    assert (timeline["total"], timeline["shown"], timeline["omitted"]) == (2, 2, 0)
    kinds = [a["kind"] for a in blocks["actions"]["actions"]]
    assert kinds == ["open_pr", "reopen", "feedback"]
    assert blocks["actions"]["actions"][0]["url"] == f"{task.repo.url}/pull/7"
    assert blocks["actions"]["actions"][1]["url"] == f"/api/tasks/{task.public_id}/reopen"


def test_submitted_without_a_pr_has_a_null_hero_pr(task, harness, claimed):
    response = harness.result(task.public_id, claimed["run_id"], "submitted", agent_status="ok")
    assert response.status_code == 200, response.content
    blocks = Delivery.objects.get(task=task).blocks
    assert_valid(blocks, "submitted", with_pr=False)
    assert by_type(blocks)["hero"]["pr"] is None
    assert by_type(blocks)["outcome"]["headline"] == "Submitted without a pull request"
    assert by_type(blocks)["summary"]["markdown"] == "ok"
    assert [a["kind"] for a in by_type(blocks)["actions"]["actions"]] == ["reopen", "feedback"]


def test_no_changes_payload(task, harness, claimed):
    response = harness.result(
        task.public_id,
        claimed["run_id"],
        "no_changes",
        no_changes_reason="Already fixed upstream in #41.\nNothing to do.",
    )
    assert response.status_code == 200, response.content
    delivery = Delivery.objects.get(task=task)
    assert delivery.status == "no_changes"
    assert_valid(delivery.blocks, "no_changes")
    outcome = delivery.blocks[0]
    assert outcome["headline"] == "Already fixed upstream in #41."
    assert outcome["reason"] == "Already fixed upstream in #41.\nNothing to do."
    assert delivery.blocks[1]["markdown"] == "Already fixed upstream in #41.\nNothing to do."
    assert [a["kind"] for a in delivery.blocks[-1]["actions"]] == ["reopen", "feedback"]
    [event] = delivery_events(task)
    assert event.name == "task.no_changes"


def test_blocked_payload_carries_the_question(task, harness, claimed):
    run_id = claimed["run_id"]
    response = harness.result(task.public_id, run_id, "blocked", question="May I add a dependency?")
    assert response.status_code == 200, response.content
    delivery = Delivery.objects.get(task=task)
    assert_valid(delivery.blocks, "blocked")
    outcome, _, actions = delivery.blocks
    assert outcome["status"] == "blocked"
    assert outcome["headline"] == outcome["question"] == "May I add a dependency?"
    assert outcome["interrupt_id"] == response.json()["interrupt_id"]
    assert actions["actions"] == [
        {
            "kind": "answer",
            "label": "Answer the question",
            "method": "POST",
            "url": f"/api/tasks/{task.public_id}/answer",
            "fields": ["answer"],
            "choices": {},
        }
    ]
    [event] = delivery_events(task)
    assert event.name == "task.blocked"


def test_timeline_merges_repeats_and_keeps_the_first_and_last_steps(task, harness, claimed):
    run_id = claimed["run_id"]
    messages = ["Waiting for CI"] * 3 + [f"Step {n}" for n in range(30)]
    for message in messages:
        assert harness.step(task.public_id, run_id, message).status_code == 201
    assert harness.result(task.public_id, run_id, "submitted").status_code == 200
    timeline = by_type(Delivery.objects.get(task=task).blocks)["timeline"]
    jsonschema.validate(timeline, SCHEMAS["timeline"])
    shown = [(s["user_message"], s["repeat"]) for s in timeline["steps"]]
    assert shown[0] == ("Waiting for CI", 3)
    assert shown[1:5] == [(f"Step {n}", 1) for n in range(4)]
    assert shown[5:] == [(f"Step {n}", 1) for n in range(15, 30)]
    assert (timeline["total"], timeline["shown"], timeline["omitted"]) == (33, 20, 11)
    seqs = [s["seq"] for s in timeline["steps"]]
    assert seqs == sorted(seqs)


# --- Events ---------------------------------------------------------------------------------


def test_delivered_event_is_in_the_task_log_with_the_blocks(task, harness, claimed):
    run_id = claimed["run_id"]
    response = harness.result(task.public_id, run_id, "submitted", artifact={"pr": pr(task)})
    assert response.status_code == 200, response.content
    delivery = Delivery.objects.get(task=task)
    [event] = delivery_events(task)
    assert event.topic == f"tasks/{task.public_id}"
    frame = events.frame(event)
    assert frame["event"] == frame["type"] == "task.delivered"
    assert frame["task_id"] == task.public_id
    assert (frame["status"], frame["run_id"], frame["version"]) == ("submitted", run_id, 1)
    assert frame["blocks"] == delivery.blocks
    # Stored in the result's transaction, right after its timeline entry and status change.
    result_entry = Event.objects.get(task=task, name="task.timeline", payload__kind="result")
    assert event.seq > result_entry.seq


@pytest.mark.django_db(transaction=True)
def test_delivered_event_is_published_after_commit(world, task, harness):
    run_id = harness.claim(task.public_id).json()["run_id"]
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(events.group_name(f"tasks/{task.public_id}"), channel)
    response = harness.result(task.public_id, run_id, "submitted", artifact={"pr": pr(task)})
    assert response.status_code == 200, response.content

    async def drain() -> list[dict[str, Any]]:
        import asyncio

        frames = []
        while True:
            try:
                message = await asyncio.wait_for(layer.receive(channel), timeout=1)
            except TimeoutError:
                return frames
            frames.append(message["frame"])

    frames = async_to_sync(drain)()
    delivered = [f for f in frames if f["event"] == "task.delivered"]
    assert len(delivered) == 1
    assert delivered[0]["blocks"] == Delivery.objects.get(task=task).blocks
    assert delivered[0]["version"] == 1


def test_refused_result_stores_no_delivery_and_no_event(task, harness, claimed):
    before = stored()
    outside = {**pr(task), "url": "https://github.com/someone/else/pull/7"}
    response = harness.result(
        task.public_id, claimed["run_id"], "submitted", artifact={"pr": outside}
    )
    assert response.status_code == 422
    assert stored() == before
    assert not Delivery.objects.exists() and not delivery_events(task)


def test_a_failing_composition_rolls_the_result_back(world, task, claimed, monkeypatch):
    def broken(result: Any, **options: Any) -> list[dict[str, Any]]:
        raise RuntimeError("composer bug")

    monkeypatch.setattr("delivery.services.compose", broken)
    before = stored()
    with pytest.raises(RuntimeError):
        delivery_result_submit(
            app=world.app,
            task=task,
            run_id=claimed["run_id"],
            lease_epoch=None,
            status="submitted",
            agent_status="done",
            artifact={"pr": pr(task)},
            working_summary="summary",
        )
    assert stored() == before
    assert not Result.objects.exists()
    assert Run.objects.get(public_id=claimed["run_id"]).status == RunStatus.LIVE


# --- Idempotency and versions ---------------------------------------------------------------


@pytest.mark.parametrize("status", ["submitted", "blocked", "no_changes"])
def test_replayed_result_makes_one_delivery_and_one_event(task, harness, claimed, status):
    extra: dict[str, Any] = {"working_summary": "summary"}
    if status == "submitted":
        extra["artifact"] = {"pr": pr(task)}
    first = harness.result(task.public_id, claimed["run_id"], status, **extra)
    assert first.status_code == 200, first.content
    again = harness.result(task.public_id, claimed["run_id"], status, **extra)
    assert again.status_code == 200 and again.json() == first.json()
    keyed = harness.post(
        harness.url(task.public_id, "result"),
        {"run_id": claimed["run_id"], "status": status, "agent_status": "done", **extra}
        | ({"no_changes_reason": "Already fixed upstream."} if status == "no_changes" else {})
        | ({"question": "Which branch should I target?"} if status == "blocked" else {}),
        HTTP_IDEMPOTENCY_KEY="k1",
    )
    assert keyed.status_code == 200, keyed.content
    assert Delivery.objects.filter(task=task).count() == 1
    assert len(delivery_events(task)) == 1


def test_reopen_and_deliver_again_is_version_2(world, task, harness, claimed):
    first = harness.result(
        task.public_id, claimed["run_id"], "submitted", artifact={"pr": pr(task)}
    )
    assert first.status_code == 200
    person = world.person()
    assert person.post(f"/api/tasks/{task.public_id}/reopen").status_code == 200
    run_id = harness.claim(task.public_id).json()["run_id"]
    second = harness.result(task.public_id, run_id, "submitted", artifact={"pr": pr(task, 8)})
    assert second.status_code == 200, second.content
    rows = list(Delivery.objects.filter(task=task).order_by("version"))
    assert [(d.version, d.run.public_id) for d in rows] == [
        (1, claimed["run_id"]),
        (2, run_id),
    ]
    assert [e.payload["version"] for e in delivery_events(task)] == [1, 2]
    assert by_type(rows[1].blocks)["hero"]["pr"]["number"] == 8
    task.refresh_from_db()
    assert task.status == TaskStatus.COMPLETED


def test_blocked_then_answered_then_submitted_counts_versions(world, task, harness, claimed):
    blocked = harness.result(task.public_id, claimed["run_id"], "blocked", question="Which DB?")
    assert blocked.status_code == 200
    answer = world.person().post(f"/api/tasks/{task.public_id}/answer", {"answer": "Postgres"})
    assert answer.status_code == 200, answer.content
    run_id = harness.claim(task.public_id).json()["run_id"]
    assert harness.result(task.public_id, run_id, "submitted").status_code == 200
    assert list(
        Delivery.objects.filter(task=task).order_by("version").values_list("version", "status")
    ) == [
        (1, "blocked"),
        (2, "submitted"),
    ]
    assert [e.name for e in delivery_events(task)] == ["task.blocked", "task.delivered"]


def test_docs_print_exactly_the_schemas_in_code():
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "delivery.md").read_text()
    documented = {
        name: json.loads(body)
        for name, body in re.findall(r"### `(\w+)`\n\n```json\n(.*?)\n```", text, re.S)
    }
    assert documented == SCHEMAS


def test_issue_16_a_no_pr_result_that_copies_the_definition_of_done_claims_nothing(
    world, task, harness, claimed
):
    """The issue's case: "submitted", no PR, agent status "Did nothing" and a summary that
    copied the definition of done showed "In scope", "Checklist 3/3" and ✓ met."""
    task.definition_of_done = DOD
    task.save()
    copied = "\n".join(f"- [ ] {item}" for item in DOD)
    response = harness.result(
        task.public_id,
        claimed["run_id"],
        "submitted",
        agent_status="Did nothing",
        working_summary=copied,
    )
    assert response.status_code == 200, response.content
    payload = world.person().get(f"/api/tasks/{task.public_id}/delivery").json()
    blocks = by_type(payload["blocks"])
    assert_valid(payload["blocks"], "submitted", with_pr=False)
    verdict = blocks["outcome"]["verdict"]
    assert verdict["scope"] == "no_pr" and verdict["pr_check"] == "no_pr"
    assert "in_scope" not in verdict and "checklist_met" not in verdict
    assert blocks["outcome"]["headline"] == "Submitted without a pull request"
    assert verdict["not_checked"][0].startswith("No pull request was submitted")
    # Each item is at most "mentioned", with the harness's words quoted, never met.
    for item, text in zip(blocks["checklist"]["items"], DOD, strict=True):
        assert item["status"] == "mentioned"
        assert item["evidence"].endswith(f"“- [ ] {text}”")
    assert "checks" not in blocks
    assert not any("met" in json.dumps(b) for b in [verdict])
