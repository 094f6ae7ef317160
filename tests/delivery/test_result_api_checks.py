"""POST /api/harness/tasks/{task_id}/result (docs/contract.md §3) and the judge's scope rule."""

from __future__ import annotations

from typing import Any

import pytest

from delivery.models import Delivery
from tasks.harnesses.keys import harness_app_revoke
from tasks.models import (
    Event,
    Result,
    ResultStatus,
    Run,
    RunStatus,
    TaskStatus,
)
from tests.delivery import result_support
from tests.delivery.result_support import pr, url
from tests.helpers import Harness, problem, stored

# The shared fixtures, bound here so that pytest finds them for this module's tests.
task = result_support.task


# --- 422 out_of_scope ---------------------------------------------------------------------


OUT_OF_SCOPE = {
    "another_repository": lambda t: pr(t, url="https://github.com/acme/other/pull/7"),
    "a_fork_like_name": lambda t: pr(t, url=f"{t.repo.url}-fork/pull/7"),
    "a_look_alike_host": lambda t: pr(
        t, url=f"https://github.com.evil.example/{t.repo.full_name}/pull/7"
    ),
    "a_look_alike_io_host": lambda t: pr(
        t, url=f"https://github.com.evil.io/{t.repo.full_name}/pull/7"
    ),
    "a_host_suffix": lambda t: pr(t, url=f"https://evilgithub.com/{t.repo.full_name}/pull/7"),
    "a_javascript_url": lambda t: pr(t, url=f"javascript://github.com/{t.repo.full_name}/pull/7"),
    "a_pr_with_a_query": lambda t: pr(t, url=f"{t.repo.url}/pull/7?x=1"),
    "another_owner_same_name": lambda t: pr(
        t, url=f"https://github.com/evil/{t.repo.full_name.split('/')[1]}/pull/7"
    ),
    "a_branch_in_another_namespace": lambda t: pr(t, branch="feature/ether/x"),
    "a_user_info_host": lambda t: pr(
        t, url=f"https://github.com@evil.example/{t.repo.full_name}/pull/7"
    ),
    "a_branch_outside_scope": lambda t: pr(t, branch="main"),
    "a_branch_only_prefixed_like_scope": lambda t: pr(t, branch="etherx/fix"),
    "a_malformed_url": lambda t: pr(t, url="not a url"),
    "a_url_that_does_not_parse": lambda t: pr(t, url="https://[::1/acme/repo/pull/7"),
    "a_non_pull_url": lambda t: pr(t, url=f"{t.repo.url}/issues/7"),
    "a_number_not_in_the_url": lambda t: pr(t, number=8),
}


@pytest.mark.parametrize("case", list(OUT_OF_SCOPE))
def test_submitted_pr_out_of_scope_is_422_and_stores_nothing(task, harness, claimed, case):
    run_id = claimed["run_id"]
    before = stored()
    artifact = {"pr": OUT_OF_SCOPE[case](task)}
    response = harness.result(task.public_id, run_id, "submitted", artifact=artifact)
    body = problem(response, 422, "out_of_scope")
    assert body["errors"]["artifact.pr"], body
    assert stored() == before
    assert not Result.objects.exists()
    assert not Delivery.objects.exists()
    assert not Event.objects.filter(task=task, name="task.delivered").exists()
    run = Run.objects.get(public_id=run_id)
    assert run.status == RunStatus.LIVE and run.ended_at is None
    task.refresh_from_db()
    assert task.status == TaskStatus.IN_PROGRESS


def test_run_refused_out_of_scope_can_still_submit_an_in_scope_pr(task, harness, claimed):
    run_id = claimed["run_id"]
    refused = harness.result(
        task.public_id, run_id, "submitted", artifact={"pr": pr(task, branch="main")}
    )
    problem(refused, 422, "out_of_scope")
    fixed = harness.result(task.public_id, run_id, "submitted", artifact={"pr": pr(task)})
    assert fixed.status_code == 200, fixed.content
    assert Result.objects.get(task=task).status == ResultStatus.SUBMITTED
    assert Run.objects.get(public_id=run_id).status == RunStatus.FINISHED


# --- 400 ----------------------------------------------------------------------------------


def test_result_validation_errors_are_400(task, harness, claimed):
    run_id = claimed["run_id"]
    base = {"run_id": run_id, "status": "submitted", "agent_status": "done"}

    def errors(data: Any) -> dict[str, list[str]]:
        return problem(harness.post(url(task), data), 400, "validation_error")["errors"]

    before = stored()
    problem(harness.post(url(task), raw="{nope"), 400, "malformed_json")
    problem(harness.post(url(task), raw="[1,2]"), 400, "validation_error")
    assert {"run_id", "status", "agent_status"} <= set(errors({}))
    assert list(errors({k: v for k, v in base.items() if k != "agent_status"})) == ["agent_status"]
    assert "status" in errors({**base, "status": "done"})
    assert errors({**base, "status": 1})["status"] == ["Must be a string."]
    assert errors({**base, "run_id": 7})["run_id"] == ["Must be a string."]
    assert errors({**base, "agent_status": 5})["agent_status"] == ["Must be a string."]
    assert errors({**base, "working_summary": 5})["working_summary"] == ["Must be a string."]
    assert errors({**base, "lease_epoch": "1"})["lease_epoch"] == ["Must be an integer."]
    for bad in ("run_123", "task_" + "0" * 32, "run_" + "A" * 32):
        assert list(errors({**base, "run_id": bad})) == ["run_id"], bad
    assert errors({**base, "extra": 1}) == {"extra": ["Unknown field."]}
    no_changes = {**base, "status": "no_changes"}
    assert "no_changes_reason" in errors(no_changes)
    assert "no_changes_reason" in errors({**no_changes, "no_changes_reason": "  "})
    blocked = {**base, "status": "blocked"}
    assert "question" in errors(blocked)
    assert "question" in errors({**blocked, "question": ""})
    assert "artifact" in errors({**base, "artifact": "https://github.com/acme/x/pull/1"})
    assert errors({**base, "artifact": {"pr": pr(task, number="7")}})["artifact.pr.number"] == [
        "Must be an integer."
    ]
    missing_url = {k: v for k, v in pr(task).items() if k != "url"}
    assert "artifact.pr.url" in errors({**base, "artifact": {"pr": missing_url}})
    assert "artifact.pr.branch" in errors({**base, "artifact": {"pr": pr(task, branch=1)}})
    assert stored() == before
    assert not Result.objects.exists()
    assert Run.objects.get(public_id=run_id).status == RunStatus.LIVE


def test_result_body_that_is_not_json_is_415(task, harness, claimed):
    before = stored()
    response = harness.post(url(task), raw="status=submitted", content_type="text/plain")
    problem(response, 415, "unsupported_media_type")
    assert stored() == before


# --- 401 / 403 / 404 / 405 ----------------------------------------------------------------


def test_result_auth_failures_are_401(world, task, claimed):
    run_id = claimed["run_id"]
    before = stored()
    response = Harness("", world.app.app_id).result(task.public_id, run_id)
    problem(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"].startswith("Bearer")
    problem(
        Harness("eth_app_wrong", world.app.app_id).result(task.public_id, run_id),
        401,
        "not_authenticated",
    )
    problem(
        Harness(world.token, world.app.app_id).result(task.public_id, run_id),
        401,
        "not_authenticated",
    )
    assert stored() == before
    harness_app_revoke(org=world.org, app_id=world.app.app_id)
    before = stored()
    response = world.harness().result(task.public_id, run_id)
    assert "revoked" in problem(response, 401, "not_authenticated")["detail"]
    assert stored() == before


def test_result_unknown_other_org_and_malformed_task_ids_are_404(world, task, harness, claimed):
    run_id = claimed["run_id"]
    before = stored()
    problem(harness.result("task_" + "0" * 32, run_id), 404, "not_found")
    problem(harness.result("task_nothex", run_id), 404, "not_found")
    problem(world.outsider_harness().result(task.public_id, run_id), 404, "not_found")
    assert stored() == before


def test_result_get_is_405(task, harness, claimed):
    before = stored()
    response = harness.get(url(task))
    problem(response, 405, "method_not_allowed")
    assert "POST" in response["Allow"]
    assert stored() == before


# --- 409: fencing -----------------------------------------------------------------------
# Another app's run (403), another task's or an unknown run, an expired or released run,
# a stale lease_epoch (409 lease_lost) and writes after a cancel (409 task_closed) are
# tests/tasks/test_fencing.py, once for all four harness writes. A finished run's result
# is a retry or run_finished: above.


# --- 413 ---------------------------------------------------------------------------------


def test_result_body_over_the_limit_is_413(settings, task, harness, claimed):
    settings.ETHER_MAX_BODY_BYTES = 2048
    before = stored()
    response = harness.result(task.public_id, claimed["run_id"], working_summary="x" * 3000)
    problem(response, 413, "payload_too_large")
    assert stored() == before
    assert Run.objects.get(public_id=claimed["run_id"]).status == RunStatus.LIVE


IN_SCOPE = {
    "the_plain_url": lambda t: pr(t),
    "a_trailing_slash": lambda t: pr(t, url=f"{t.repo.url}/pull/7/"),
    "pulls_with_an_s": lambda t: pr(t, url=f"{t.repo.url}/pulls/7"),
    "other_letter_case": lambda t: pr(
        t, url=f"{t.repo.url.upper().replace('HTTPS', 'https')}/pull/7"
    ),
    "a_nested_branch": lambda t: pr(t, branch="ether/fix/flaky-test"),
    "with_a_title": lambda t: pr(t, title="Make test_widget deterministic"),
}


@pytest.mark.parametrize("case", list(IN_SCOPE))
def test_submitted_pr_in_scope_completes_and_stores_one_delivery(task, harness, claimed, case):
    run_id = claimed["run_id"]
    artifact = {"pr": IN_SCOPE[case](task)}
    response = harness.result(task.public_id, run_id, "submitted", artifact=artifact)
    assert response.status_code == 200, response.content
    # Stored as a browser reads it: scheme and host lower-cased (tests/delivery/test_pr_urls.py).
    scheme, _, rest = artifact["pr"]["url"].partition("://")
    host, _, path = rest.partition("/")
    href = f"{scheme.lower()}://{host.lower()}/{path}"
    assert Result.objects.get(task=task).artifact == {"pr": {**artifact["pr"], "url": href}}
    [delivery] = Delivery.objects.filter(task=task)
    assert (delivery.status, delivery.version, delivery.run.public_id) == ("submitted", 1, run_id)
    hero = next(b for b in delivery.blocks if b["type"] == "hero")
    assert hero["pr"]["url"] == href
    assert hero["pr"]["title"] == artifact["pr"].get("title")
    outcome = delivery.blocks[0]
    assert outcome["verdict"]["scope"] == "verified"
    assert Run.objects.get(public_id=run_id).status == RunStatus.FINISHED
