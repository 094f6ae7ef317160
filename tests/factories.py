"""Plain factory functions: each makes one object with sensible defaults."""

from __future__ import annotations

import itertools
from typing import Any

from accounts.models import Org, Project, Repository
from accounts.services import access_token_create, member_ensure
from tasks.harnesses.keys import harness_app_create
from tasks.models import HarnessApp, Task
from tasks.services import task_create

_n = itertools.count(1)


def make_org(slug: str | None = None) -> Org:
    slug = slug or f"org{next(_n)}"
    return Org.objects.create(slug=slug, name=slug.title())


def make_user(org: Org, username: str | None = None, **fields: Any) -> Any:
    return member_ensure(org=org, username=username or f"user{next(_n)}", **fields)


def make_token(user: Any) -> str:
    return access_token_create(username=user.username).secret


def make_app(org: Org, app_id: str | None = None) -> tuple[HarnessApp, str]:
    issued = harness_app_create(org=org, app_id=app_id or f"app-{next(_n)}")
    return issued.app, issued.key


def make_repo(org: Org, full_name: str | None = None) -> Repository:
    n = next(_n)
    project = Project.objects.create(org=org, slug=f"proj{n}", name=f"Project {n}")
    full_name = full_name or f"{org.slug}/repo{n}"
    return Repository.objects.create(
        org=org, project=project, full_name=full_name, url=f"https://github.com/{full_name}"
    )


def make_task(org: Org, owner: Any = None, repo: Repository | None = None, **fields: Any) -> Task:
    repo = repo or make_repo(org)
    values = {
        "title": "Fix the flaky test",
        "prompt": "Make test_widget deterministic.",
        "definition_of_done": ["test_widget passes 100 times in a row", "No sleep() added"],
        "branch_scope": "ether/*",
    }
    values.update(fields)
    return task_create(
        org=org, owner=owner, project=repo.project.slug, repo=repo.full_name, **values
    )
