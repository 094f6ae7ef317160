"""GET /api/tasks/{task_id}/delivery and POST /api/tasks/{task_id}/feedback
(docs/contract.md §5)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from delivery.models import Delivery
from tasks.models import Event
from tests.helpers import Caller, problem

DLV_ID = re.compile(r"^dlv_[0-9a-f]{32}$")


def url(task: Any, route: str = "delivery") -> str:
    return f"/api/tasks/{task.public_id}/{route}"


def deliver(task: Any, harness: Any, number: int = 7) -> str:
    run_id = harness.claim(task.public_id).json()["run_id"]
    pr = {"number": number, "branch": "ether/x", "url": f"{task.repo.url}/pull/{number}"}
    response = harness.result(task.public_id, run_id, "submitted", artifact={"pr": pr})
    assert response.status_code == 200, response.content
    return run_id


def test_delivery_is_404_before_the_first_result(world, task):
    body = problem(world.person().get(url(task)), 404, "not_found")
    assert task.public_id in body["detail"]


def test_delivery_answers_the_stored_payload(world, task, harness):
    run_id = deliver(task, harness)
    response = world.person().get(url(task))
    assert response.status_code == 200, response.content
    body = response.json()
    delivery = Delivery.objects.get(task=task)
    assert DLV_ID.match(body["id"]) and body["id"] == delivery.public_id
    assert body["task_id"] == task.public_id
    assert body["run_id"] == run_id
    assert (body["status"], body["version"], body["latest_version"]) == ("submitted", 1, 1)
    assert body["created_at"].endswith("Z")
    assert body["blocks"] == delivery.blocks
    # The same blocks the event carried, so a page load and a live update render alike.
    event = Event.objects.get(task=task, name="task.delivered")
    assert event.payload["blocks"] == body["blocks"]


def test_delivery_with_a_session_works_too(world, task, harness):
    deliver(task, harness)
    caller = Caller(None)
    caller.client.force_login(world.user)
    assert caller.get(url(task)).status_code == 200


def test_delivery_latest_and_older_versions(world, task, harness):
    deliver(task, harness, 7)
    assert world.person().post(f"/api/tasks/{task.public_id}/reopen").status_code == 200
    deliver(task, harness, 8)
    person = world.person()
    latest = person.get(url(task)).json()
    assert (latest["version"], latest["latest_version"]) == (2, 2)
    assert latest["blocks"][1]["pr"]["number"] == 8
    older = person.get(url(task) + "?version=1").json()
    assert (older["version"], older["latest_version"]) == (1, 2)
    assert older["blocks"][1]["pr"]["number"] == 7
    problem(person.get(url(task) + "?version=3"), 404, "not_found")
    # An empty ?version= counts as absent (docs/api.md): the newest.
    assert person.get(url(task) + "?version=").json()["version"] == 2
    for bad in ("0", "-1", "one", "1.5", "\u0661", "\uff11", "+1", " 1", "9" * 12):
        body = problem(person.get(url(task) + f"?version={bad}"), 400, "validation_error")
        assert body["errors"] == {"version": ["Must be a positive integer."]}, bad


def test_delivery_auth_failures_are_401(world, task, harness):
    deliver(task, harness)
    response = Caller(None).get(url(task))
    problem(response, 401, "not_authenticated")
    problem(Caller("eth_pat_wrong").get(url(task)), 401, "not_authenticated")
    # A harness key is not a user credential.
    problem(Caller(world.key).get(url(task)), 401, "not_authenticated")


def test_delivery_of_another_org_unknown_or_malformed_task_is_404(world, task, harness):
    deliver(task, harness)
    problem(world.outsider().get(url(task)), 404, "not_found")
    problem(world.person().get("/api/tasks/task_" + "0" * 32 + "/delivery"), 404, "not_found")
    problem(world.person().get("/api/tasks/task_nothex/delivery"), 404, "not_found")


@pytest.mark.parametrize("verb", ["post", "put", "patch", "delete"])
def test_delivery_other_methods_are_405(world, task, harness, verb):
    deliver(task, harness)
    response = world.person().method(verb, url(task))
    problem(response, 405, "method_not_allowed")
    assert Delivery.objects.count() == 1


# --- Feedback -------------------------------------------------------------------------------


def feedback_entries(task: Any) -> list[dict[str, Any]]:
    rows = Event.objects.filter(task=task, name="task.timeline", payload__kind="feedback")
    return [e.payload for e in rows.order_by("seq")]


def test_feedback_is_recorded_on_the_timeline_with_the_version(world, task, harness):
    deliver(task, harness)
    response = world.person().post(url(task, "feedback"), {"rating": "up", "comment": "Nice"})
    assert response.status_code == 201, response.content
    assert response.json() == {
        "task_id": task.public_id,
        "version": 1,
        "rating": "up",
        "comment": "Nice",
    }
    [entry] = feedback_entries(task)
    assert (entry["rating"], entry["comment"], entry["version"]) == ("up", "Nice", 1)
    assert entry["actor"] == {"type": "user", "username": "alice"}
    timeline = world.person().get(f"/api/tasks/{task.public_id}/timeline").json()["data"]
    assert timeline[-1]["kind"] == "feedback"


def test_feedback_the_delivery_action_points_at_works(world, task, harness):
    deliver(task, harness)
    blocks = world.person().get(url(task)).json()["blocks"]
    [action] = [a for a in blocks[-1]["actions"] if a["kind"] == "feedback"]
    body = {"rating": action["choices"]["rating"][1]}
    assert world.person().post(action["url"], body).status_code == 201


def test_feedback_refusals(world, task, harness):
    person = world.person()
    problem(person.post(url(task, "feedback"), {"rating": "up"}), 404, "not_found")
    deliver(task, harness)
    problem(person.post(url(task, "feedback"), {"rating": "meh"}), 400, "validation_error")
    problem(person.post(url(task, "feedback"), {}), 400, "validation_error")
    problem(person.post(url(task, "feedback"), {"rating": "up", "x": 1}), 400, "validation_error")
    problem(Caller(None).post(url(task, "feedback"), {"rating": "up"}), 401, "not_authenticated")
    problem(world.outsider().post(url(task, "feedback"), {"rating": "up"}), 404, "not_found")
    problem(person.get(url(task, "feedback")), 405, "method_not_allowed")
    assert feedback_entries(task) == []
