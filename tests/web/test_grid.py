"""The task grid's server side: pages past the first 50 (keyset on update time), the
status filter, title search, the "need your answer" count and relative times."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from tasks.models import Task
from tests import factories
from web.selectors import GRID_PAGE_SIZE
from web.views import relative_time

pytestmark = pytest.mark.django_db


def signed_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def ids_on(html: str) -> list[str]:
    return re.findall(r'<tr data-task-id="(task_[0-9a-f]{32})"', html)


def link(html: str, rel: str) -> str | None:
    match = re.search(rf'<a class="button" href="([^"]*)" rel="{rel}">', html)
    return match and match.group(1).replace("&amp;", "&")


def make_tasks(world: Any, count: int, **fields: Any) -> list[Task]:
    """``count`` tasks of one repository, updated a minute apart, newest last."""
    repo = factories.make_repo(world.org)
    start = timezone.now() - timedelta(days=1)
    tasks = []
    for n in range(count):
        task = factories.make_task(world.org, owner=world.user, repo=repo, **fields)
        Task.objects.filter(pk=task.pk).update(updated_at=start + timedelta(minutes=n))
        tasks.append(task)
    return tasks


def test_the_grid_pages_every_task_once_newest_first(world):
    tasks = make_tasks(world, 2 * GRID_PAGE_SIZE + 7)
    # Two tasks updated at the same instant: the id breaks the tie, neither is lost.
    Task.objects.filter(pk=tasks[3].pk).update(updated_at=tasks[4].updated_at)
    expected = [
        t.public_id
        for t in Task.objects.filter(org=world.org).order_by("-updated_at", "-public_id")
    ]
    client = signed_in(world.user)
    seen, pages, url = [], [], "/tasks/"
    while url:
        html = client.get(url).content.decode()
        pages.append(html)
        seen += ids_on(html)
        older = link(html, "next")
        url = f"/tasks/{older}" if older else None
    assert seen == expected
    assert [len(ids_on(p)) for p in pages] == [GRID_PAGE_SIZE, GRID_PAGE_SIZE, 7]
    assert link(pages[0], "prev") is None
    assert f"{len(expected)} tasks" in pages[0]
    # Newer from the last page is the second page again.
    newer = link(pages[2], "prev")
    assert ids_on(signed_in(world.user).get(f"/tasks/{newer}").content.decode()) == ids_on(pages[1])


def test_the_grid_filters_by_status_and_searches_titles(world):
    make_tasks(world, 3, title="Add a health check")
    fixes = make_tasks(world, 2, title="Fix the login FLAKE")
    Task.objects.filter(pk=fixes[0].pk).update(status="paused")
    client = signed_in(world.user)

    html = client.get("/tasks/?q=flake").content.decode()
    assert sorted(ids_on(html)) == sorted(t.public_id for t in fixes)
    assert "2 tasks match “flake”" in html
    assert 'value="flake"' in html

    html = client.get("/tasks/?status=paused&q=fix").content.decode()
    assert ids_on(html) == [fixes[0].public_id]
    # The count of tasks waiting for an answer is of the whole org, whatever the filter.
    assert '<span class="waiting__count" id="waiting-count">1</span>' in html
    assert "needs your answer" in html

    html = client.get("/tasks/?status=cancelled").content.decode()
    assert ids_on(html) == []
    assert "No task matches." in html
    # An unknown status or a cursor this server did not issue reads as absent.
    html = client.get("/tasks/?status=bogus&after=123.task_x").content.decode()
    assert len(ids_on(html)) == 5
    # Another org's tasks are never listed or counted.
    factories.make_task(world.outsider_org, owner=world.outsider_user, title="Fix the FLAKE")
    assert len(ids_on(client.get("/tasks/?q=flake").content.decode())) == 2


def test_grid_times_are_relative_with_the_utc_time_as_title(world, task):
    Task.objects.filter(pk=task.pk).update(
        updated_at=timezone.now() - timedelta(minutes=3, seconds=5)
    )
    html = signed_in(world.user).get("/tasks/").content.decode()
    stamp = Task.objects.get(pk=task.pk).updated_at
    title = stamp.strftime("%Y-%m-%d %H:%M:%S UTC")
    assert re.search(rf'<time datetime="[^"]+" title="{title}">3 min ago</time>', html)


def test_relative_time_words():
    now = timezone.now()
    at = lambda **ago: (now - timedelta(**ago)).isoformat().replace("+00:00", "Z")  # noqa: E731
    assert relative_time(at(seconds=10), now) == "just now"
    assert relative_time(at(seconds=-30), now) == "just now"  # a clock ahead of ours
    assert relative_time(at(minutes=3), now) == "3 min ago"
    assert relative_time(at(hours=5), now) == "5 h ago"
    assert relative_time(at(days=3), now) == "3 d ago"
    assert relative_time(at(days=90), now) == at(days=90)[:10]


def test_the_new_task_form_offers_the_orgs_repositories_and_apps(world, task):
    html = signed_in(world.user).get("/tasks/").content.decode()
    assert f'<option value="{task.repo.full_name}" data-project="{task.project.slug}">' in html
    assert f'<option value="{world.app.app_id}">' in html
