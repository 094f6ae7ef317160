"""``python -m bench.fixtures COMMAND …``: makes a benchmark's data through the services
(the same writes the API makes) in the store the environment selects, and prints one JSON
line. Run by ``bench.common.fixtures`` in a child process, so the benchmark process itself
never imports Django.
"""

# django.setup() must run before the models are imported.
# ruff: noqa: E402

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import django

django.setup()

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext

from accounts.models import Org, Project, Repository
from accounts.services import access_token_create, member_ensure
from delivery.compose import compose
from delivery.services import delivery_result_submit
from tasks.harnesses.keys import harness_app_create
from tasks.models import HarnessApp, Result, Run, Task
from tasks.services import lease_claim, lease_release, step_record, task_create

ORG = "bench"
REPO = "bench-org/widgets"


def world() -> tuple[Org, Any, str]:
    org, _ = Org.objects.get_or_create(slug=ORG, defaults={"name": "Bench"})
    user = member_ensure(org=org, username="bench", password="bench-password-1")
    project, _ = Project.objects.get_or_create(org=org, slug="widgets", defaults={"name": "W"})
    Repository.objects.get_or_create(
        org=org,
        full_name=REPO,
        defaults={"project": project, "url": f"https://github.com/{REPO}"},
    )
    token = access_token_create(username=user.username, label="bench").secret
    return org, user, token


def new_app(org: Org, app_id: str) -> tuple[HarnessApp, str]:
    issued = harness_app_create(org=org, app_id=app_id, rotate=True)
    return issued.app, issued.key


def new_task(org: Org, user: Any, n: int) -> Task:
    return task_create(
        org=org,
        owner=user,
        title=f"Bench task {n}",
        prompt="Make test_widget deterministic.",
        definition_of_done=["test_widget passes 100 times", "No sleep() added"],
        project="widgets",
        repo=REPO,
    )


def make_tasks(org: Org, user: Any, count: int) -> list[Task]:
    # One transaction: thousands of tasks in seconds, not one fsync each.
    with transaction.atomic():
        return [new_task(org, user, n) for n in range(count)]


def history(
    *, app: HarnessApp, user: Any, task: Task, runs: int, steps: list[int], summaries: bool
) -> Run:
    """``runs`` runs on ``task``: each claims, narrates ``steps[i]`` steps and ends (all but
    the last by a release, the last stays live). Returns the live run."""
    run = None
    for r in range(runs):
        run = lease_claim(app=app, task=task).run
        for s in range(steps[r]):
            step_record(
                app=app,
                task=task,
                run_id=run.public_id,
                lease_epoch=None,
                phase="coding_agent",
                user_message=f"Run {r}, step {s}: ran the widget tests, 3 failures left",
            )
        if r < runs - 1:
            if summaries:
                delivery_result_submit(
                    app=app,
                    task=task,
                    run_id=run.public_id,
                    lease_epoch=None,
                    status="blocked",
                    agent_status="Need input",
                    question="Which fixture?",
                    working_summary=f"Run {r}: froze the clock in the fixture.",
                )
                task.refresh_from_db()
                from tasks.services import task_answer

                task_answer(task=task, user=user, answer="the first")
            else:
                lease_release(task=task, user=user)
        task.refresh_from_db()
    assert run is not None
    return run


def cmd_fanout(args: argparse.Namespace) -> dict[str, Any]:
    org, _user, token = world()
    app, key = new_app(org, "bench-harness")
    task = make_tasks(org, _user, 1)[0]
    run = lease_claim(app=app, task=task).run
    return {
        "token": token,
        "key": key,
        "app_id": app.app_id,
        "task_id": task.public_id,
        "run_id": run.public_id,
    }


def cmd_api(args: argparse.Namespace) -> dict[str, Any]:
    org, user, token = world()
    app, key = new_app(org, "bench-harness")
    ready = make_tasks(org, user, args.claim_tasks)
    live_tasks = make_tasks(org, user, args.live_tasks)
    live = []
    with transaction.atomic():
        for task in live_tasks:
            run = lease_claim(app=app, task=task).run
            live.append({"task_id": task.public_id, "run_id": run.public_id})
    return {
        "token": token,
        "key": key,
        "app_id": app.app_id,
        "claim_tasks": [t.public_id for t in ready],
        "live": live,
    }


def cmd_contention(args: argparse.Namespace) -> dict[str, Any]:
    org, user, _token = world()
    apps = [new_app(org, f"claimer-{n:02d}") for n in range(args.apps)]
    tasks = make_tasks(org, user, args.tasks)
    return {
        "apps": [{"app_id": a.app_id, "key": k} for a, k in apps],
        "tasks": [t.public_id for t in tasks],
    }


def cmd_verify_claims(args: argparse.Namespace) -> dict[str, Any]:
    """What the database says after the contention rounds: runs per claimed task."""
    from django.db.models import Count

    per_task = (
        Task.objects.filter(org__slug=ORG).annotate(n=Count("runs")).values_list("n", flat=True)
    )
    counts = list(per_task)
    return {
        "tasks": len(counts),
        "claimed": sum(1 for n in counts if n >= 1),
        "tasks_with_more_than_one_run": sum(1 for n in counts if n > 1),
    }


def _median_seconds(fn: Callable[[], Any], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def cmd_scale(args: argparse.Namespace) -> dict[str, Any]:
    """A small task and a large one (``--steps`` over ``--runs``), each ended by a
    submitted result, and the time ``delivery.compose`` takes for each last run."""
    org, user, token = world()
    app, _key = new_app(org, "bench-harness")
    out: dict[str, Any] = {"token": token}
    # A session for the replay page, which is for people signed in.
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(get_user_model().objects.get(username="bench"))
    out["sessionid"] = client.cookies["sessionid"].value
    out["tasks"] = {}
    for label, steps, runs in (("small", args.small_steps, 1), ("large", args.steps, args.runs)):
        task = make_tasks(org, user, 1)[0]
        # Most steps go to the last run, the one whose delivery is composed: the worst case.
        per_run = [min(25, steps // runs)] * (runs - 1)
        per_run.append(steps - sum(per_run))
        started = time.perf_counter()
        with transaction.atomic():
            run = history(app=app, user=user, task=task, runs=runs, steps=per_run, summaries=False)
            delivery_result_submit(
                app=app,
                task=task,
                run_id=run.public_id,
                lease_epoch=None,
                status="submitted",
                agent_status="Opened PR #7",
                artifact={
                    "pr": {
                        "number": 7,
                        "branch": "ether/fix",
                        "url": f"https://github.com/{REPO}/pull/7",
                    }
                },
                working_summary="Froze the clock; test_widget passes 100 times. No sleep() added.",
            )
        built = time.perf_counter() - started
        result = Result.objects.select_related("task__repo", "run").get(run=run)
        seconds = _median_seconds(lambda result=result: compose(result), args.rounds)
        out["tasks"][label] = {
            "task_id": task.public_id,
            "steps": steps,
            "runs": runs,
            "last_run_steps": per_run[-1],
            "build_s": round(built, 2),
            "compose_ms": round(seconds * 1000, 3),
        }
    return out


def cmd_connections(args: argparse.Namespace) -> dict[str, Any]:
    org, user, token = world()
    task = make_tasks(org, user, 1)[0]
    return {"token": token, "task_id": task.public_id}


def cmd_queries(args: argparse.Namespace) -> dict[str, Any]:
    """SQL queries per request of each measured harness route, on a task with one step
    and one run and on one with 50 of each (and 50 working documents in its scope)."""
    org, user, _token = world()
    app, key = new_app(org, "bench-queries")
    headers = {"HTTP_AUTHORIZATION": f"Bearer {key}", "HTTP_HOST": "127.0.0.1"}
    client = Client()
    out: dict[str, dict[str, int]] = {}
    for label, n in (("1", 1), ("50", 50)):
        task = make_tasks(org, user, 1)[0]
        run = history(
            app=app, user=user, task=task, runs=n, steps=[1] * (n - 1) + [n], summaries=True
        )
        fresh = make_tasks(org, user, 1)[0]
        base = f"/api/harness/tasks/{task.public_id}"
        calls: dict[str, Callable[[], Any]] = {
            "claim": lambda fresh=fresh: client.post(
                f"/api/harness/tasks/{fresh.public_id}/claim",
                {"app_id": app.app_id},
                content_type="application/json",
                **headers,
            ),
            "heartbeat": lambda base=base, run=run: client.post(
                f"{base}/heartbeat",
                {"run_id": run.public_id},
                content_type="application/json",
                **headers,
            ),
            "step": lambda base=base, run=run: client.post(
                f"{base}/steps",
                {"run_id": run.public_id, "phase": "coding_agent", "user_message": "Working"},
                content_type="application/json",
                **headers,
            ),
            "context_doc": lambda task=task: client.get(
                f"/api/harness/context/doc/task/{task.public_id}.md?task_id={task.public_id}",
                **headers,
            ),
        }
        counts = {}
        for name, call in calls.items():
            with CaptureQueriesContext(connection) as captured:
                response = call()
            assert response.status_code < 300, (name, response.status_code, response.content)
            counts[name] = len(captured.captured_queries)
        out[label] = counts
    return out


COMMANDS = {
    "fanout": cmd_fanout,
    "api": cmd_api,
    "contention": cmd_contention,
    "verify_claims": cmd_verify_claims,
    "scale": cmd_scale,
    "connections": cmd_connections,
    "queries": cmd_queries,
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=sorted(COMMANDS))
    parser.add_argument("--claim-tasks", type=int, default=10)
    parser.add_argument("--live-tasks", type=int, default=10)
    parser.add_argument("--apps", type=int, default=64)
    parser.add_argument("--tasks", type=int, default=10)
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--small-steps", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(json.dumps(COMMANDS[args.command](args)))


if __name__ == "__main__":
    main()
