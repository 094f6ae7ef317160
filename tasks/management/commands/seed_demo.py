from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from accounts.models import Org, Project, Repository
from accounts.services import (
    access_token_create,
    member_ensure,
    org_ensure,
    project_ensure,
    repository_ensure,
)
from corpus.models import Skill, Tool
from corpus.services import document_put
from tasks.harnesses.keys import harness_app_create
from tasks.harnesses.services import harness_create
from tasks.models import Harness
from tasks.services import task_create

DEMO_ORG = "demo"
DEMO_USER = "demo"
DEMO_APP = "demo-harness"
DEMO_PROJECT = "widgets"
DEMO_REPO = "demo-org/widgets"
DEMO_BRANCH_SCOPE = "ether/*"


def default_secrets_file() -> Path:
    """Where the banner mode keeps the demo's secrets for ``demo_harness`` (gitignored)."""
    return Path(settings.DATA_DIR) / "demo.json"


BANNER = """
Ether is running. Open your tasks:

  {base_url}/tasks/
  (sign in as {username}, password {password})

The demo task, ready for a harness:
  {base_url}/tasks/{task_id}
  run the demo harness against it in a second terminal:
    make demo               (or: make demo ARGS=--ask, to answer a question on the page)
  or one that waits for work and takes every task made ready (the one above first):
    make demo ARGS=--next

  API docs (OpenAPI UI)  {base_url}/api/docs/
  Admin                  {base_url}/admin/   (same user)

Demo org {org}: project {project}, repository {repo}
  harness app   {app_id}
  harness key   {harness_key}
  access token  {access_token}

Try the harness loop with curl:
  export KEY={harness_key}
  export T={base_url}/api/harness/tasks/{task_id}
  curl -s -H "Authorization: Bearer $KEY" $T/execution
  curl -s -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \\
       -d '{{"app_id": "{app_id}"}}' $T/claim
  # then heartbeat, steps, interrupt and result with the run_id it returns (README).

Watch it from a terminal:
  curl -s -H "Authorization: Bearer {access_token}" {base_url}/api/tasks/{task_id}/timeline
  (after `make test`, which installs the websockets CLI with the dev tools:)
  .venv/bin/python -m websockets "{ws_url}/api/realtime?token={access_token}"
  > {{"action": "subscribe", "topics": ["tasks/{task_id}"]}}
Create more tasks with POST /api/tasks (the API docs page: Authorize with the token).
"""


PROFILE = """# Demo's preferences

- Small pull requests, one concern each.
- Tests first when fixing a bug; never `sleep()` in tests.
- Ask before adding a dependency.
"""
PROJECT = """# Widgets

A Django service that sells widgets.

## Stack
- Python 3.11, Django 5.2, Postgres in production, SQLite in tests.
- `make test` runs the suite; `ruff` keeps style.
"""
REPO = """# demo-org/widgets

- Default branch `main`; harness branches are `ether/<topic>`.
- App code lives in `widgets/`, tests in `tests/` mirroring it.
"""


def seed_corpus(*, org: Org, owner: Any, project: Project, repo: Repository) -> None:
    """The demo's documents, tools and skills (kept, not duplicated, across runs)."""
    document_put(org=org, kind="profile", owner=owner, title="Demo's preferences", body=PROFILE)
    document_put(org=org, kind="project", project=project, title="Widgets", body=PROJECT)
    document_put(org=org, kind="repo", repo=repo, title="demo-org/widgets", body=REPO)
    Tool.objects.update_or_create(
        org=org,
        name="run_tests",
        defaults={
            "description": "Run the repository's test suite and return the summary.",
            "input_schema": {
                "type": "object",
                "properties": {"path": {"type": "string", "description": "a test path"}},
            },
        },
    )
    Skill.objects.update_or_create(
        org=org,
        name="django-endpoint",
        defaults={
            "domain": "django",
            "description": "Add a Django view with its URL and a test.",
            "body": "1. Write the test.\n2. Add the view and the URL.\n3. Run `make test`.\n",
        },
    )


DEMO_HARNESS = "demo-agent"


def demo_harness_definition(org: Any) -> None:
    """The demo app's definition: a child of the built-in ``generic``, so a claim shows
    a resolved prompt stack, capabilities and network rules."""
    if Harness.objects.filter(org=org, name=DEMO_HARNESS).exclude(status="deleted").exists():
        return
    harness_create(
        org=org,
        data={
            "name": DEMO_HARNESS,
            "display_name": "Demo agent",
            "description": "The demo harness app's definition, built on the generic one.",
            "parent_harness_id": "generic",
            "system_prompt": "This is the Widgets demo: keep changes small and tested.",
            "capabilities": [{"ref": "ether.steps", "config": {"every_seconds": 10}}],
            "network_access": {"allowed": ["github.com", "*.githubusercontent.com", "pypi.org"]},
            "initial_files": [
                {"path": "/workspace/NOTES.md", "content": "# Notes\n", "is_readonly": False}
            ],
            "tags": ["demo"],
        },
    )


class Command(BaseCommand):
    help = "Create (or refresh) the demo org and print its secrets; every call makes a new task."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="print one JSON object")
        parser.add_argument(
            "--base-url", default=os.environ.get("ETHER_BASE_URL", "http://127.0.0.1:8080")
        )
        parser.add_argument(
            "--secrets-file",
            type=Path,
            default=None,
            help=(
                "also write the printed object to this file (mode 0600); without --json the "
                "default is var/demo.json, which demo_harness reads"
            ),
        )

    def handle(self, *args: Any, **options: Any) -> None:
        password = secrets.token_urlsafe(12)
        with transaction.atomic():
            org = org_ensure(slug=DEMO_ORG, name="Demo org")
            owner = member_ensure(
                org=org,
                username=DEMO_USER,
                password=password,
                is_staff=True,
                is_superuser=True,
                email="demo@example.com",
            )
            project = project_ensure(org=org, slug=DEMO_PROJECT, name="Widgets")
            repo = repository_ensure(
                project=project,
                full_name=DEMO_REPO,
                url=f"https://github.com/{DEMO_REPO}",
                default_branch="main",
            )
            seed_corpus(org=org, owner=owner, project=project, repo=repo)
            demo_harness_definition(org)
            key = harness_app_create(
                org=org, app_id=DEMO_APP, harness=DEMO_HARNESS, rotate=True
            ).key
            token = access_token_create(username=DEMO_USER, label="seed_demo").secret
            task = task_create(
                org=org,
                owner=owner,
                title="Add a health check endpoint",
                prompt="Add GET /healthz that answers 200 with the build version.",
                definition_of_done=[
                    "GET /healthz answers 200",
                    "The response includes the build version",
                    "A test covers the endpoint",
                ],
                project=project.slug,
                repo=repo.full_name,
                branch_scope=DEMO_BRANCH_SCOPE,
            )
        out = {
            "org": org.slug,
            "username": DEMO_USER,
            "password": password,
            "access_token": token,
            "app_id": DEMO_APP,
            "harness_key": key,
            "project": project.slug,
            "repo": repo.full_name,
            "task_id": task.public_id,
            "base_url": options["base_url"].rstrip("/"),
        }
        secrets_file = options["secrets_file"]
        if secrets_file is None and not options["json"]:
            secrets_file = default_secrets_file()
        if secrets_file is not None:
            write_secrets(secrets_file, out)
        if options["json"]:
            self.stdout.write(json.dumps(out))
            return
        ws_url = "ws" + out["base_url"].removeprefix("http")  # http→ws, https→wss
        self.stdout.write(BANNER.format(**out, ws_url=ws_url))


def write_secrets(path: Path, out: dict[str, Any]) -> None:
    """The key is shown once and stored only hashed, so the demo harness needs this copy;
    created 0600 because it holds live credentials."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(out, handle, indent=2)
        handle.write("\n")
    path.chmod(0o600)
