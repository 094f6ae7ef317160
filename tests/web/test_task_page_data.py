"""What the task and replay pages embed for issue 19: the newest run for the "what is
going on" strip (with the server's clock), the viewer's own rating of the delivery shown,
and human times in the replay's version picker."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import pytest

from api.rfc3339 import iso
from tasks.models import Event, Run
from tests import factories
from tests.web.test_pages import embedded, reopen, signed_in, submit
from web.views import human_time

pytestmark = pytest.mark.django_db


def rate(user: Any, task: Any, rating: str) -> None:
    response = signed_in(user).post(
        f"/api/tasks/{task.public_id}/feedback", {"rating": rating}, content_type="application/json"
    )
    assert response.status_code == 201, response.content


def test_a_ready_task_has_no_run_and_hides_the_strip(world, task):
    response = signed_in(world.user).get(f"/tasks/{task.public_id}")
    config = embedded(response, "page-config")
    assert config["run"] is None
    assert config["rating"] is None
    datetime.fromisoformat(config["now"].replace("Z", "+00:00"))  # the server's clock
    html = response.content.decode()
    assert re.search(r'<section class="panel activity" id="activity"[^>]*hidden>', html)


def test_a_running_task_embeds_its_run_for_the_strip(world, task, harness, claimed):
    harness.step(task.public_id, claimed["run_id"], "Reading the code…")
    response = signed_in(world.user).get(f"/tasks/{task.public_id}")
    config = embedded(response, "page-config")
    run = Run.objects.get(public_id=claimed["run_id"])
    assert config["run"] == {
        "run_id": run.public_id,
        "app_id": "builder",
        "status": "live",
        "started_at": iso(run.started_at),
        "lease_expires_at": claimed["lease_expires_at"],
        "ended_at": None,
    }
    assert config["urls"]["detail"] == f"/api/tasks/{task.public_id}"
    html = response.content.decode()
    assert re.search(
        r'<section class="panel activity" id="activity" aria-label="Current run">', html
    )
    assert f'<code id="activity-run">{run.public_id}</code>' in html
    # The tab is "Task": "Live" is only the connection badge.
    assert ">Live</a>" not in html and ">Task</a>" in html


def test_the_viewers_rating_of_the_shown_delivery_is_read_back(world, task, harness, claimed):
    submit(harness, task, claimed["run_id"])
    rate(world.user, task, "up")
    rate(world.user, task, "down")  # the newest rating is the one shown
    # Another member's rating is theirs, not the viewer's.
    colleague = factories.make_user(world.org, "bob")
    rate(colleague, task, "up")
    assert Event.objects.filter(task=task, payload__kind="feedback").count() == 3

    config = embedded(signed_in(world.user).get(f"/tasks/{task.public_id}"), "page-config")
    assert config["rating"] == "down"
    config = embedded(signed_in(colleague).get(f"/tasks/{task.public_id}"), "page-config")
    assert config["rating"] == "up"

    # A new delivery (version 2) has not been rated yet.
    reopen(world, task)
    second = harness.claim(task.public_id).json()["run_id"]
    submit(harness, task, second, number=8)
    response = signed_in(world.user).get(f"/tasks/{task.public_id}")
    assert embedded(response, "delivery-data")["version"] == 2
    assert embedded(response, "page-config")["rating"] is None


def test_the_replay_version_picker_shows_human_times(world, task, harness, claimed):
    submit(harness, task, claimed["run_id"])
    response = signed_in(world.user).get(f"/tasks/{task.public_id}/replay")
    html = response.content.decode()
    picker = html.split('id="delivery-version"')[1].split("</select>")[0]
    (option,) = re.findall(r'<option value="1"[^>]*>([^<]*)</option>', picker)
    assert not re.search(r"\d{4}-\d\d-\d\dT", option), option
    assert re.fullmatch(r"v1 · submitted · \d{1,2} \w{3} \d{4}, \d\d:\d\d UTC", option), option
    data = embedded(response, "replay-data")
    assert data["deliveries"][0]["created_display"] in option
    # Before any delivery point, the picker can say so.
    assert '<option value="" disabled>None yet at this point</option>' in html


def test_human_time_reads_utc():
    assert human_time("2026-12-04T08:31:05.123Z") == "4 Dec 2026, 08:31 UTC"
    assert human_time("2026-12-04T10:31:05+02:00") == "4 Dec 2026, 08:31 UTC"
    assert human_time(None) == ""


def test_the_replay_plays_each_question_once(world, task, harness, claimed):
    run_id = claimed["run_id"]
    harness.interrupt(task.public_id, run_id, "Proceed?")
    response = signed_in(world.user).get(f"/tasks/{task.public_id}/replay")
    events = embedded(response, "replay-data")["events"]
    asked = [e for e in events if e.get("question") == "Proceed?" or e.get("summary") == "Proceed?"]
    assert [e["type"] for e in asked] == ["task.interrupted"]
    # The timeline's interrupt entry is still in the log, for the timeline route.
    assert Event.objects.filter(task=task, payload__kind="interrupt").count() == 1
