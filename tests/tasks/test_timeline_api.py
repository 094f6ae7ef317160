from __future__ import annotations

import re
from datetime import timedelta
from io import StringIO

import pytest
import time_machine
from django.conf import settings
from django.core.management import call_command
from django.utils import timezone

from tasks.models import Event, Run, RunStatus, Task, TaskStatus
from tests.helpers import Caller, problem

ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
FRAME_KEYS = {"event", "type", "topic", "seq", "ts", "task_id"}


def timeline_url(task) -> str:
    return f"/api/tasks/{task.public_id}/timeline"


def after_expiry() -> object:
    return timezone.now() + timedelta(seconds=settings.ETHER_LEASE_SECONDS + 1)


def expiries(task) -> int:
    return Event.objects.filter(
        task=task, name="task.timeline", payload__kind="lease_expired"
    ).count()


def test_timeline_of_new_task_has_one_created_frame(world, task):
    response = world.person().get(timeline_url(task))
    assert response.status_code == 200
    body = response.json()
    assert body["next_cursor"] is None
    [frame] = body["data"]
    assert set(frame) >= FRAME_KEYS
    assert frame["event"] == frame["type"] == "task.timeline"
    assert frame["topic"] == f"tasks/{task.public_id}"
    assert frame["seq"] == 1
    assert ISO_Z.match(frame["ts"])
    assert frame["task_id"] == task.public_id
    assert frame["kind"] == "created"
    assert frame["actor"] == {"type": "user", "username": "alice"}
    assert frame["summary"] == f"Task created: {task.title}"


def test_timeline_lists_every_kind_oldest_first(world, task, harness, claimed):
    run_id = claimed["run_id"]
    person = world.person()
    assert harness.step(task.public_id, run_id, "Reading the test").status_code == 201
    assert harness.interrupt(task.public_id, run_id, "Which DB?").status_code == 200
    assert (
        person.post(f"/api/tasks/{task.public_id}/answer", {"answer": "SQLite"}).status_code == 200
    )
    assert harness.result(task.public_id, run_id, status="blocked").status_code == 200
    assert person.post(f"/api/tasks/{task.public_id}/answer", {"answer": "main"}).status_code == 200
    second = world.rival_harness().claim(task.public_id).json()
    assert person.post(f"/api/tasks/{task.public_id}/release").status_code == 200
    third = harness.claim(task.public_id).json()
    with time_machine.travel(after_expiry(), tick=False):
        response = person.get(timeline_url(task))
    assert response.status_code == 200
    frames = response.json()["data"]
    assert [f["kind"] for f in frames] == [
        "created",
        "claim",
        "step",
        "interrupt",
        "answer",
        "result",
        "interrupt",
        "answer",
        "claim",
        "release",
        "claim",
        "lease_expired",
    ]
    for frame in frames:
        assert set(frame) >= FRAME_KEYS
        assert frame["event"] == frame["type"] == "task.timeline"
        assert frame["topic"] == f"tasks/{task.public_id}"
        assert frame["task_id"] == task.public_id
        assert ISO_Z.match(frame["ts"])
    seqs = [f["seq"] for f in frames]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert frames[1]["run_id"] == run_id and frames[1]["app_id"] == "builder"
    assert frames[2]["summary"] == "Reading the test" and frames[2]["phase"] == "coding_agent"
    assert frames[3]["summary"] == "Which DB?"
    assert frames[4]["actor"] == {"type": "user", "username": "alice"}
    assert frames[5]["status"] == "blocked"
    assert frames[8]["run_id"] == second["run_id"] and frames[8]["app_id"] == "rival"
    assert frames[9]["actor"]["username"] == "alice"
    assert frames[11]["run_id"] == third["run_id"]
    assert frames[11]["actor"] == {"type": "system"}


def test_task_topic_seq_is_gapless_across_all_its_events(world, task, harness, claimed):
    harness.step(task.public_id, claimed["run_id"])
    harness.interrupt(task.public_id, claimed["run_id"])
    world.person().post(f"/api/tasks/{task.public_id}/answer", {"answer": "x"})
    topic = f"tasks/{task.public_id}"
    seqs = list(Event.objects.filter(topic=topic).order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, len(seqs) + 1))
    timeline = [f["seq"] for f in world.person().get(timeline_url(task)).json()["data"]]
    names = dict(Event.objects.filter(topic=topic).values_list("seq", "name"))
    # The timeline is the task.timeline events of the topic, in seq order, none left out.
    assert timeline == [s for s in seqs if names[s] == "task.timeline"]


def test_timeline_seq_is_consecutive_when_only_timeline_events_happen(world, task, claimed):
    world.person().post(f"/api/tasks/{task.public_id}/release")
    frames = world.person().get(timeline_url(task)).json()["data"]
    assert [(f["seq"], f["kind"]) for f in frames] == [(1, "created"), (2, "claim"), (3, "release")]


def test_timelines_of_two_tasks_have_their_own_seq(world, task):
    other = world.task()
    world.harness().claim(other.public_id)
    mine = world.person().get(timeline_url(task)).json()["data"]
    theirs = world.person().get(timeline_url(other)).json()["data"]
    assert [f["seq"] for f in mine] == [1]
    assert [f["seq"] for f in theirs] == [1, 2]
    assert {f["task_id"] for f in theirs} == {other.public_id}


def test_lease_expiry_is_recorded_lazily_by_a_get_exactly_once(world, task, claimed):
    person = world.person()
    with time_machine.travel(after_expiry(), tick=False):
        first = person.get(timeline_url(task)).json()["data"]
        second = person.get(timeline_url(task)).json()["data"]
        person.get(f"/api/tasks/{task.public_id}")
    assert [f["kind"] for f in first] == ["created", "claim", "lease_expired"]
    assert first == second
    assert first[-1]["run_id"] == claimed["run_id"]
    assert first[-1]["lease_expires_at"] == claimed["lease_expires_at"]
    assert expiries(task) == 1
    assert Run.objects.get(public_id=claimed["run_id"]).status == RunStatus.EXPIRED
    assert Task.objects.get(pk=task.pk).status == TaskStatus.READY


def test_lease_expiry_is_recorded_by_sweep_exactly_once(world, task, claimed):
    out = StringIO()
    with time_machine.travel(after_expiry(), tick=False):
        call_command("sweep_leases", "--once", stdout=out)
        call_command("sweep_leases", "--once", stdout=out)
        frames = world.person().get(timeline_url(task)).json()["data"]
    assert out.getvalue().splitlines() == ["expired 1 lease(s)", "expired 0 lease(s)"]
    assert [f["kind"] for f in frames] == ["created", "claim", "lease_expired"]
    assert expiries(task) == 1
    assert Run.objects.get(public_id=claimed["run_id"]).status == RunStatus.EXPIRED
    assert Task.objects.get(pk=task.pk).status == TaskStatus.READY


@pytest.mark.parametrize("get_first", [True, False])
def test_lazy_get_and_sweep_together_record_expiry_once(world, task, claimed, get_first):
    out = StringIO()
    person = world.person()
    with time_machine.travel(after_expiry(), tick=False):
        if get_first:
            person.get(timeline_url(task))
        call_command("sweep_leases", "--once", stdout=out)
        frames = person.get(timeline_url(task)).json()["data"]
    assert out.getvalue().strip() == f"expired {0 if get_first else 1} lease(s)"
    assert [f["kind"] for f in frames] == ["created", "claim", "lease_expired"]
    assert expiries(task) == 1


def test_no_expiry_is_recorded_before_the_lease_runs_out(world, task, claimed):
    just_before = timezone.now() + timedelta(seconds=settings.ETHER_LEASE_SECONDS - 5)
    with time_machine.travel(just_before, tick=False):
        frames = world.person().get(timeline_url(task)).json()["data"]
        call_command("sweep_leases", "--once", stdout=StringIO())
    assert [f["kind"] for f in frames] == ["created", "claim"]
    assert expiries(task) == 0
    assert Run.objects.get(public_id=claimed["run_id"]).status == RunStatus.LIVE


def test_timeline_paginates_oldest_first(world, task, harness, claimed):
    for n in range(3):
        harness.step(task.public_id, claimed["run_id"], f"Step {n}")
    person = world.person()
    page = person.get(timeline_url(task) + "?limit=2").json()
    kinds = [f["kind"] for f in page["data"]]
    assert kinds == ["created", "claim"] and page["next_cursor"]
    seen = list(page["data"])
    while page["next_cursor"]:
        response = person.get(timeline_url(task) + f"?limit=2&cursor={page['next_cursor']}")
        assert response.status_code == 200
        page = response.json()
        seen += page["data"]
    assert [f["kind"] for f in seen] == ["created", "claim", "step", "step", "step"]
    assert [f["summary"] for f in seen[2:]] == ["Step 0", "Step 1", "Step 2"]
    assert seen == person.get(timeline_url(task)).json()["data"]


@pytest.mark.parametrize("query", ["limit=0", "limit=201", "limit=x", "cursor=%%%"])
def test_timeline_bad_paging_is_400(world, task, query):
    body = problem(world.person().get(timeline_url(task) + "?" + query), 400, "validation_error")
    assert list(body["errors"]) == [query.split("=")[0]]


def test_timeline_of_other_org_unknown_or_malformed_task_is_404(world, task):
    problem(world.outsider().get(timeline_url(task)), 404, "not_found")
    person = world.person()
    problem(person.get(f"/api/tasks/task_{'0' * 32}/timeline"), 404, "not_found")
    problem(person.get("/api/tasks/task_x/timeline"), 404, "not_found")


def test_other_orgs_get_does_not_settle_the_lease(world, task, claimed):
    with time_machine.travel(after_expiry(), tick=False):
        problem(world.outsider().get(timeline_url(task)), 404, "not_found")
    assert expiries(task) == 0
    assert Run.objects.get(public_id=claimed["run_id"]).status == RunStatus.LIVE


def test_timeline_without_valid_token_is_401(world, task):
    for caller in (Caller(None), Caller("eth_pat_wrong"), Caller(world.key)):
        problem(caller.get(timeline_url(task)), 401, "not_authenticated")


@pytest.mark.parametrize("verb", ["POST", "PUT", "DELETE"])
def test_timeline_other_methods_are_405(world, task, verb):
    problem(world.person().method(verb, timeline_url(task)), 405, "method_not_allowed")
    assert Event.objects.filter(task=task, name="task.timeline").count() == 1
