"""The server-rendered pages: who may see them, what each task state shows, and the topic
positions they embed for a gapless live stream."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from corpus.models import Compaction, Document
from tasks.models import Event, Task
from tasks.realtime import hub
from tests import factories

pytestmark = pytest.mark.django_db


def signed_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def embedded(response: Any, element_id: str) -> Any:
    """The JSON a page embeds with ``json_script``."""
    html = response.content.decode()
    match = re.search(
        rf'<script id="{element_id}" type="application/json">(.*?)</script>', html, re.S
    )
    assert match, f"no #{element_id} in the page"
    return json.loads(match.group(1))


def submit(harness: Any, task: Task, run_id: str, number: int = 7) -> Any:
    """A submitted result with a pull request inside the task's scope."""
    pr = {"number": number, "url": f"{task.repo.url}/pull/{number}", "branch": "ether/fix"}
    response = harness.result(
        task.public_id,
        run_id,
        status="submitted",
        agent_status=f"Opened PR #{number}",
        artifact={"pr": pr},
        working_summary="Made **test_widget** deterministic.",
    )
    assert response.status_code == 200, response.content
    return response


def reopen(world: Any, task: Task) -> None:
    response = signed_in(world.user).post(
        f"/api/tasks/{task.public_id}/reopen", {}, content_type="application/json"
    )
    assert response.status_code == 200, response.content


# --- Access ---------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["", "{id}", "{id}/replay", "{id}/compaction"])
def test_every_page_needs_a_signed_in_user(world, task, suffix):
    path = "/tasks/" + suffix.format(id=task.public_id)
    response = Client().get(path)
    assert response.status_code == 302
    assert response["Location"] == f"/login/?next={path}"


def test_a_member_who_is_not_staff_signs_in_on_the_pages_own_form(world, task):
    world.user.set_password("a long enough password")
    world.user.save()
    assert not world.user.is_staff  # the admin's login form would refuse this user
    client = Client()
    page = client.get(f"/login/?next=/tasks/{task.public_id}")
    assert page.status_code == 200 and b'name="password"' in page.content
    wrong = client.post("/login/", {"username": "alice", "password": "nope"})
    assert wrong.status_code == 200 and b"did not match" in wrong.content
    response = client.post(
        "/login/",
        {
            "username": "alice",
            "password": "a long enough password",
            "next": f"/tasks/{task.public_id}",
        },
    )
    assert response.status_code == 302 and response["Location"] == f"/tasks/{task.public_id}"
    assert client.get(f"/tasks/{task.public_id}").status_code == 200
    assert client.post("/logout/")["Location"] == "/login/"
    assert client.get("/tasks/").status_code == 302


@pytest.mark.parametrize("suffix", ["{id}", "{id}/replay", "{id}/compaction"])
def test_another_orgs_task_is_404(world, task, suffix):
    response = signed_in(world.outsider_user).get("/tasks/" + suffix.format(id=task.public_id))
    assert response.status_code == 404
    assert task.title.encode() not in response.content


def test_malformed_and_unknown_task_ids_are_404(world):
    client = signed_in(world.user)
    assert client.get("/tasks/task_nothex").status_code == 404
    assert client.get("/tasks/task_" + "0" * 32).status_code == 404


def test_a_user_without_an_org_gets_a_403_page(db):
    staff = get_user_model().objects.create_user("root", password="x" * 12, is_staff=True)
    response = signed_in(staff).get("/tasks/")
    assert response.status_code == 403
    assert b"not a member of any org" in response.content


def test_home_sends_people_to_their_grid_and_others_to_sign_in(world):
    assert signed_in(world.user).get("/")["Location"] == "/tasks/"
    assert Client().get("/")["Location"] == "/login/"
    page = Client().get("/", follow=True)
    assert page.status_code == 200
    assert b"Sign in to Ether" in page.content
    assert b'href="/api/docs/"' in page.content


# --- Grid -----------------------------------------------------------------------------


def test_grid_lists_only_the_orgs_tasks_newest_update_first(world):
    world.task(title="Older task")
    newer = world.task(title="Newer task")
    foreign = factories.make_task(world.outsider_org, title="Foreign task")
    response = signed_in(world.user).get("/tasks/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Older task" in html and "Newer task" in html
    assert "Foreign task" not in html and foreign.public_id not in html
    assert html.index("Newer task") < html.index("Older task")
    assert f'href="/tasks/{newer.public_id}"' in html
    config = embedded(response, "page-config")
    assert config["positions"] == {"activity/acme": hub.last_seq("activity/acme")}
    assert config["positions"]["activity/acme"] >= 2  # two tasks created, one event each
    assert config["ticketUrl"] == "/api/realtime/tickets"


def test_empty_grid_says_how_to_make_a_task(world):
    response = signed_in(world.user).get("/tasks/")
    assert b"No tasks yet" in response.content
    assert embedded(response, "page-config")["positions"] == {"activity/acme": 0}


# --- Task page, state by state ------------------------------------------------------


def test_ready_task_shows_its_brief_and_waits_for_a_harness(world, task):
    response = signed_in(world.user).get(f"/tasks/{task.public_id}")
    assert response.status_code == 200
    html = response.content.decode()
    assert task.title in html and "Make test_widget deterministic." in html
    for item in task.definition_of_done:
        assert item in html
    assert 'data-status="ready"' in html
    assert "Waiting for a harness to claim this task." in html
    assert '<div class="panel question" id="question" hidden' in html
    config = embedded(response, "page-config")
    assert config["taskId"] == task.public_id
    assert config["status"] == "ready" and config["delivered"] is False
    assert config["openQuestion"] is None
    assert embedded(response, "delivery-data") is None


def test_running_task_shows_its_steps_and_embeds_both_positions(world, task, harness, claimed):
    run_id = claimed["run_id"]
    harness.step(task.public_id, run_id, "Reading the code…", internal_label="read_repo")
    harness.step(task.public_id, run_id, "Making the changes…", phase="coding_agent")
    response = signed_in(world.user).get(f"/tasks/{task.public_id}")
    html = response.content.decode()
    assert 'data-status="in_progress"' in html
    assert "Reading the code…" in html and "Making the changes…" in html
    # The internal label is in the page but only shown in debug mode.
    assert re.search(r'<span class="debug-only step__debug">.*read_repo', html)
    config = embedded(response, "page-config")
    topic = f"tasks/{task.public_id}"
    assert config["positions"] == {
        topic: hub.last_seq(topic),
        "activity/acme": hub.last_seq("activity/acme"),
    }
    # Every step at or below the embedded position is on the page: nothing falls between.
    step_seqs = set(
        Event.objects.filter(topic=topic, name="os.harness.step").values_list("seq", flat=True)
    )
    shown = {int(s) for s in re.findall(r'<li class="step" data-seq="(\d+)"', html)}
    assert step_seqs and {s for s in step_seqs if s <= config["positions"][topic]} <= shown


def test_paused_task_shows_the_question_with_its_choices(world, task, harness, claimed):
    harness.interrupt(
        task.public_id, claimed["run_id"], "Return the git SHA too?", choices=["yes", "no"]
    )
    response = signed_in(world.user).get(f"/tasks/{task.public_id}")
    html = response.content.decode()
    assert 'data-status="paused"' in html
    assert '<div class="panel question" id="question" data-interrupt-id="int_' in html
    assert "Return the git SHA too?" in html
    assert 'data-choice="yes"' in html and 'data-choice="no"' in html
    assert (
        embedded(response, "page-config")["openQuestion"]["question"] == "Return the git SHA too?"
    )


def test_question_text_is_escaped(world, task, harness, claimed):
    harness.interrupt(task.public_id, claimed["run_id"], "<img src=x onerror=alert(1)>?")
    html = signed_in(world.user).get(f"/tasks/{task.public_id}").content.decode()
    assert "<img src=x" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;?" in html


def test_delivered_task_embeds_its_latest_delivery_for_the_card(world, task, harness, claimed):
    run_id = claimed["run_id"]
    harness.step(task.public_id, run_id, "Opening the PR…")
    submit(harness, task, run_id)
    response = signed_in(world.user).get(f"/tasks/{task.public_id}")
    html = response.content.decode()
    assert 'data-status="completed"' in html
    config = embedded(response, "page-config")
    assert config["delivered"] is True and config["deliveryRunId"] == run_id
    delivery = embedded(response, "delivery-data")
    assert delivery["version"] == 1 and delivery["run_id"] == run_id
    assert delivery["status"] == "submitted"
    assert [b["type"] for b in delivery["blocks"]] == [
        "outcome",
        "hero",
        "checks",
        "summary",
        "checklist",
        "timeline",
        "actions",
    ]
    # The card replaces the narration: the narration panel starts hidden.
    assert '<div class="panel narration" id="narration" hidden>' in html
    assert '<div id="delivery" aria-live="polite">' in html
    # The server-sanitized summary travels as JSON, escaped for a <script> element.
    assert "<strong>test_widget</strong>" not in html.split('id="delivery-data"')[1]


def test_a_new_run_after_a_delivery_shows_narration_again(world, task, harness, claimed):
    harness.result(task.public_id, claimed["run_id"], status="no_changes")
    reopen(world, task)
    second = harness.claim(task.public_id).json()["run_id"]
    harness.step(task.public_id, second, "Trying again…")
    response = signed_in(world.user).get(f"/tasks/{task.public_id}")
    assert embedded(response, "page-config")["delivered"] is False
    html = response.content.decode()
    assert "Trying again…" in html
    assert "An earlier run delivered version 1" in html


# --- Replay and compaction ------------------------------------------------------------


def test_replay_embeds_the_topic_events_in_order_and_every_delivery(world, task, harness, claimed):
    run_id = claimed["run_id"]
    harness.step(task.public_id, run_id, "One")
    harness.step(task.public_id, run_id, "Two")
    harness.interrupt(task.public_id, run_id, "Proceed?")
    response = signed_in(world.user).get(f"/tasks/{task.public_id}/replay")
    assert response.status_code == 200
    data = embedded(response, "replay-data")
    seqs = [e["seq"] for e in data["events"]]
    assert seqs == sorted(seqs)
    steps = [e["user_message"] for e in data["events"] if e["type"] == "os.harness.step"]
    assert steps == ["One", "Two"]
    # Timeline entries of kind step would repeat the steps: they are left out.
    assert not [e for e in data["events"] if e["type"] == "task.timeline" and e["kind"] == "step"]
    assert any(e["type"] == "task.interrupted" for e in data["events"])
    assert data["runs"] == [{"run_id": run_id, "app_id": "builder", "status": "live"}]


def test_replay_lists_all_delivery_versions(world, task, harness, claimed):
    harness.result(task.public_id, claimed["run_id"], status="no_changes")
    reopen(world, task)
    second = harness.claim(task.public_id).json()["run_id"]
    submit(harness, task, second)
    response = signed_in(world.user).get(f"/tasks/{task.public_id}/replay")
    data = embedded(response, "replay-data")
    assert [(d["version"], d["status"]) for d in data["deliveries"]] == [
        (1, "no_changes"),
        (2, "submitted"),
    ]
    assert b'<option value="2" selected>' in response.content
    played = [e["type"] for e in data["events"]]
    assert "task.no_changes" in played and "task.delivered" in played


def test_compaction_page_shows_working_docs_folds_and_memory(world, task, harness, settings):
    settings.ETHER_WORKING_BUDGET_BYTES = 1024
    for n in range(4):
        run_id = harness.claim(task.public_id).json()["run_id"]
        note = f"# Run {n}\n\n## Decisions\n\n- decided thing {n}\n\n" + ("filler words " * 40)
        harness.result(task.public_id, run_id, status="no_changes", working_summary=note)
        if n < 3:
            reopen(world, task)
    assert Compaction.objects.filter(task_ref=task.public_id).exists()
    response = signed_in(world.user).get(f"/tasks/{task.public_id}/compaction")
    assert response.status_code == 200
    html = response.content.decode()
    working = Document.objects.filter(task_ref=task.public_id, kind="working")
    assert working.count() == 4
    for doc in working:
        assert doc.path in html
    assert "folded" in html and "raw" in html
    memory = Document.objects.get(task_ref=task.public_id, kind="memory")
    assert memory.path in html
    assert "decided thing 0" in html  # the memory keeps each folded note's decisions
    fold = Compaction.objects.filter(task_ref=task.public_id).latest("created_at")
    assert f"{fold.bytes_before:,} B → {fold.bytes_after:,} B" in html
    # What the fold kept and dropped, note by note (the filler did not fit).
    assert fold.dropped_bytes > 0
    assert f"Kept {fold.kept_bytes:,} B, dropped {fold.dropped_bytes:,} B" in html
    for row in fold.dropped:
        lost = f"lost {row['bytes']:,} B in {row['blocks']} block"
        assert re.search(rf"<code>{row['path']}</code>[^<]*<span[^>]*>{lost}", html)
    assert "% smaller" not in html
    # The budget and how close the working slice (memory, then the raw notes it does not
    # cover) is to it, in numbers and as a meter.
    in_slice = [
        memory,
        *[d for d in working if d.public_id not in {i["doc_id"] for i in fold.inputs}],
    ]
    used = sum(d.size for d in in_slice)
    assert (
        f'<strong id="budget-used">{used:,} B</strong> of '
        '<strong id="budget-total">1,024 B</strong>' in html
    )
    assert (
        f'<meter class="budget__meter" id="budget-meter" min="0" max="1024" value="{used}"' in html
    )


def test_compaction_page_says_when_nothing_was_dropped(world, task, harness, settings):
    settings.ETHER_WORKING_BUDGET_BYTES = 2048
    for n in range(4):
        run_id = harness.claim(task.public_id).json()["run_id"]
        # The same paragraph in every note: the memory needs it once.
        note = f"## Decisions\n\n- decided thing {n}\n\n" + ("filler " * 90)
        harness.result(task.public_id, run_id, status="no_changes", working_summary=note)
        reopen(world, task)
    fold = Compaction.objects.filter(task_ref=task.public_id).latest("created_at")
    assert fold.dropped_bytes == 0 and fold.dropped == []
    html = signed_in(world.user).get(f"/tasks/{task.public_id}/compaction").content.decode()
    assert f"Kept all {fold.kept_bytes:,} B" in html
    assert "kept whole" in html


def test_compaction_page_before_any_working_notes(world, task):
    response = signed_in(world.user).get(f"/tasks/{task.public_id}/compaction")
    assert response.status_code == 200
    assert b"No working documents yet" in response.content
    assert b"Nothing compacted yet" in response.content


def test_the_admin_links_each_task_to_its_pages(world, task):
    root = get_user_model().objects.create_superuser("root", "root@example.com", "x" * 12)
    client = signed_in(root)
    listing = client.get("/admin/tasks/task/").content.decode()
    assert f'href="/tasks/{task.public_id}/replay"' in listing
    change = client.get(f"/admin/tasks/task/{task.pk}/change/").content.decode()
    assert f'href="/tasks/{task.public_id}"' in change  # "View on site"


def test_the_task_page_shows_the_assignment(world):
    anyone = world.task()
    assigned = world.task(assigned_app_id="rival")
    page = signed_in(world.user).get(f"/tasks/{anyone.public_id}").content.decode()
    assert '<dd id="assigned-app">any harness app of the org</dd>' in page
    page = signed_in(world.user).get(f"/tasks/{assigned.public_id}").content.decode()
    assert '<dd id="assigned-app"><code>rival</code> only</dd>' in page
