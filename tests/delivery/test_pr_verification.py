"""The PR check on GitHub (CONTRACT.md §7): asked after the result commits, never inside
the harness's request, against a local fake of GitHub's REST API on 127.0.0.1; the
answer becomes the delivery's next version with a ``checks`` block, announced like the
first; a rate limit or a crash leaves it for ``sweep_verifications``."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import jsonschema
import pytest
from django.core.management import call_command

from delivery.blocks import SCHEMAS
from delivery.models import Delivery, PrCheck
from delivery.verification.services import verifications_sweep
from tasks.models import Event
from tests.delivery.fake_github import (
    HEAD_SHA,
    RATE_LIMITED,
    check_runs_json,
    fake_github,
    pull_json,
)

pytestmark = pytest.mark.django_db(transaction=True)
TOKEN = "ghs_faketoken0123456789"


@pytest.fixture
def github(settings: Any) -> Any:
    with fake_github() as fake:
        settings.ETHER_GITHUB_TOKEN = TOKEN
        settings.ETHER_GITHUB_API_URL = fake.url
        yield fake


def pr_path(task: Any, number: int = 7) -> str:
    return f"/repos/{task.repo.full_name}/pulls/{number}"


def serve_pr(github: Any, task: Any, **over: Any) -> None:
    github.answer(pr_path(task), 200, pull_json(task.repo.full_name, 7, branch="ether/x", **over))
    github.answer(
        f"/repos/{task.repo.full_name}/commits/{HEAD_SHA}/check-runs", 200, check_runs_json()
    )


def submit(world: Any, task: Any, **pr: Any) -> tuple[Any, float]:
    harness = world.harness()
    run_id = harness.claim(task.public_id).json()["run_id"]
    artifact = {"pr": {"number": 7, "branch": "ether/x", "url": f"{task.repo.url}/pull/7", **pr}}
    started = time.monotonic()
    response = harness.result(
        task.public_id, run_id, "submitted", agent_status="PR opened", artifact=artifact
    )
    return response, time.monotonic() - started


def wait_for_version(world: Any, task: Any, version: int, timeout: float = 20.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = world.person().get(f"/api/tasks/{task.public_id}/delivery")
        assert response.status_code == 200, response.content
        if response.json()["version"] >= version:
            return response.json()
        time.sleep(0.05)
    raise AssertionError(f"no delivery version {version} within {timeout} s")


def wait_settled(timeout: float = 20.0) -> None:
    """Until no worker holds a check, so the test database is not flushed under one."""
    deadline = time.monotonic() + timeout
    while PrCheck.objects.filter(state="running").exists():
        assert time.monotonic() < deadline, "a PR check is still running"
        time.sleep(0.05)


def block(payload: dict, type_: str) -> dict:
    return next(b for b in payload["blocks"] if b["type"] == type_)


def test_pr_is_verified_after_commit_and_the_card_gets_a_checks_version(world, task, github):
    serve_pr(github, task)
    github.delay = 1.0  # GitHub is slow: the harness must not wait for it
    response, took = submit(world, task, head_sha=HEAD_SHA)
    assert response.status_code == 200, response.content
    assert took < 1.0
    first = Delivery.objects.get(task=task, version=1)
    assert block({"blocks": first.blocks}, "checks")["state"] == "pending"
    assert block({"blocks": first.blocks}, "outcome")["verdict"]["pr_check"] == "pending"

    payload = wait_for_version(world, task, 2)
    wait_settled()
    for b in payload["blocks"]:
        jsonschema.validate(b, SCHEMAS[b["type"]])
    checks = block(payload, "checks")
    assert checks["state"] == "verified"
    assert {f["name"]: f["status"] for f in checks["facts"]} == {
        "exists": "verified",
        "base_repository": "verified",
        "head_branch": "verified",
        "head_sha": "verified",
        "state": "verified",
    }
    assert [(r["name"], r["status"], r["conclusion"]) for r in checks["check_runs"]] == [
        ("test (3.12)", "completed", "success"),
        ("lint", "completed", "failure"),
        ("build", "in_progress", None),
    ]
    assert checks["check_runs"][0]["url"] == "https://github.com/acme/widgets/runs/4"
    assert "2 of 3 check runs completed" in checks["summary"]
    assert "1 not successful" in checks["summary"]
    verdict = block(payload, "outcome")["verdict"]
    assert (verdict["scope"], verdict["pr_check"]) == ("verified", "verified")
    assert not any("GitHub" in line for line in verdict["not_checked"])
    # The summary, checklist and timeline are the first version's.
    assert block(payload, "summary") == block({"blocks": first.blocks}, "summary")
    # Stored as a new version of the same run, announced like the first.
    second = Delivery.objects.get(task=task, version=2)
    assert (second.run_id, second.source) == (first.run_id, "verification")
    events = Event.objects.filter(task=task, name="task.delivered").order_by("seq")
    assert [e.payload["version"] for e in events] == [1, 2]
    check = PrCheck.objects.get(delivery=first)
    assert (check.state, check.attempts) == ("done", 1)
    assert check.block == checks
    # GitHub was asked with the token, for this PR and its head commit's check runs.
    asked = [(path.split("?")[0], auth) for _, path, auth in github.requests]
    assert asked == [
        (pr_path(task), f"Bearer {TOKEN}"),
        (f"/repos/{task.repo.full_name}/commits/{HEAD_SHA}/check-runs", f"Bearer {TOKEN}"),
    ]


def test_a_pr_github_does_not_know_is_not_found(world, task, github):
    response, _ = submit(world, task)  # no route: the fake answers 404 like GitHub
    assert response.status_code == 200
    payload = wait_for_version(world, task, 2)
    wait_settled()
    checks = block(payload, "checks")
    assert checks["state"] == "not_found"
    assert checks["facts"][0] == {
        "name": "exists",
        "status": "mismatch",
        "expected": f"{task.repo.full_name}#7",
        "actual": None,
    }
    assert block(payload, "outcome")["verdict"]["pr_check"] == "not_found"
    assert PrCheck.objects.get().state == "done"


@pytest.mark.parametrize(
    ("over", "wrong"),
    [
        ({"state": "closed"}, "state"),
        ({"head": {"ref": "main", "sha": HEAD_SHA, "repo": {"full_name": "x/y"}}}, "head_branch"),
        ({"base": {"ref": "main", "repo": {"full_name": "evil/fork"}}}, "base_repository"),
    ],
)
def test_a_pr_that_differs_from_the_result_is_a_mismatch(world, task, github, over, wrong):
    serve_pr(github, task, **over)
    submit(world, task)
    payload = wait_for_version(world, task, 2)
    wait_settled()
    checks = block(payload, "checks")
    assert checks["state"] == "mismatch"
    assert [f["name"] for f in checks["facts"] if f["status"] == "mismatch"] == [wrong]
    assert wrong in checks["summary"]


def test_a_head_sha_other_than_the_pushed_one_is_a_mismatch(world, task, github):
    serve_pr(github, task)
    submit(world, task, head_sha="0" * 40)
    checks = block(wait_for_version(world, task, 2), "checks")
    wait_settled()
    (fact,) = [f for f in checks["facts"] if f["name"] == "head_sha"]
    assert fact == {
        "name": "head_sha",
        "status": "mismatch",
        "expected": "0" * 40,
        "actual": HEAD_SHA,
    }


def test_rate_limit_is_said_and_retried_by_the_sweeper_after_the_reset(world, task, github):
    reset = int(time.time()) + 3600
    github.answer(
        pr_path(task),
        403,
        RATE_LIMITED,
        **{
            "x-ratelimit-remaining": "0",
            "x-ratelimit-reset": str(reset),
            "x-ratelimit-used": "5000",
            "x-ratelimit-resource": "core",
        },
    )
    submit(world, task)
    payload = wait_for_version(world, task, 2)
    wait_settled()
    checks = block(payload, "checks")
    assert checks["state"] == "unavailable"
    assert "rate limit" in checks["summary"]
    assert block(payload, "outcome")["verdict"]["pr_check"] == "unavailable"
    check = PrCheck.objects.get()
    reset_at = datetime.fromtimestamp(reset, tz=UTC)
    assert (check.state, check.attempts, check.next_attempt_at) == ("pending", 1, reset_at)
    # Not before the reset…
    assert verifications_sweep() == 0
    # …and after it GitHub answers.
    serve_pr(github, task)
    assert verifications_sweep(now=reset_at + timedelta(seconds=1)) == 1
    payload = wait_for_version(world, task, 3)
    assert block(payload, "checks")["state"] == "verified"
    check.refresh_from_db()
    assert (check.state, check.attempts) == ("done", 2)


def test_a_check_a_crash_left_running_is_taken_again_by_the_sweeper(world, task, github):
    serve_pr(github, task)
    submit(world, task)
    wait_for_version(world, task, 2)
    wait_settled()
    # As if the process died mid-check: the row says running, claimed long ago.
    PrCheck.objects.update(state="running", claimed_at=datetime(2020, 1, 1, tzinfo=UTC))
    asked = len(github.requests)
    call_command("sweep_verifications", "--once")
    check = PrCheck.objects.get()
    assert (check.state, check.attempts) == ("done", 2)
    assert len(github.requests) == asked + 2
    assert block(wait_for_version(world, task, 3), "checks")["state"] == "verified"
    # A check that is running and fresh is left to its worker.
    PrCheck.objects.update(state="running", claimed_at=datetime.now(tz=UTC))
    assert verifications_sweep() == 0


def test_without_a_token_nothing_is_asked_and_the_delivery_says_so(world, task, settings):
    settings.ETHER_GITHUB_TOKEN = ""
    response, _ = submit(world, task)
    assert response.status_code == 200
    payload = world.person().get(f"/api/tasks/{task.public_id}/delivery").json()
    assert payload["version"] == 1
    assert block(payload, "checks")["state"] == "not_configured"
    verdict = block(payload, "outcome")["verdict"]
    assert any("not verified on GitHub" in line for line in verdict["not_checked"])
    assert not PrCheck.objects.exists()


def test_a_later_runs_delivery_is_never_replaced_by_an_older_check(world, task, github):
    serve_pr(github, task)
    github.delay = 1.0
    submit(world, task)
    # Before GitHub answers, the task is reopened and a later run delivers no_changes.
    assert world.person().post(f"/api/tasks/{task.public_id}/reopen").status_code == 200
    harness = world.harness()
    run_id = harness.claim(task.public_id).json()["run_id"]
    assert harness.result(task.public_id, run_id, "no_changes").status_code == 200
    wait_settled()
    deadline = time.monotonic() + 10
    while PrCheck.objects.get().state != "done":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    latest = Delivery.objects.filter(task=task).order_by("-version").first()
    assert (latest.version, latest.status) == (2, "no_changes")
    assert PrCheck.objects.get().block["state"] == "verified"  # kept on the check's row
