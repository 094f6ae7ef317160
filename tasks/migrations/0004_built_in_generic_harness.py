"""The built-in ``generic`` harness definition: read-only, seen by every org, the default
of an org that names none. Copy it to change it."""

from __future__ import annotations

from typing import Any

from django.db import migrations

GENERIC_PROMPT = """\
You are a coding agent working on one task from Ether.

- Read the task's context first (GET /api/harness/context): the owner profile, the
  project, the repository and the task documents say how this team works.
- Narrate as you go with short steps written for the person watching (user_message).
- When a decision is not yours to make, ask one clear question (interrupt) and wait.
- Push only to branches inside the task's branch_scope, and finish with a pull request
  into the task's repository; say in the working summary how each item of the
  definition of done is met.
"""


def create_generic(apps: Any, schema_editor: Any) -> None:
    from api.ids import new_harness_id

    Harness = apps.get_model("tasks", "Harness")
    if Harness.objects.filter(org__isnull=True, name="generic").exists():
        return
    Harness.objects.create(
        public_id=new_harness_id(),
        org=None,
        name="generic",
        display_name="Generic coding agent",
        description="Ether's built-in definition: a careful coding agent. Copy it to adapt it.",
        system_prompt=GENERIC_PROMPT,
        capabilities=[
            {"ref": "ether.context", "config": {"slices": ["profile", "project", "repo", "task"]}},
            {"ref": "ether.steps", "config": {}},
            {"ref": "ether.interrupts", "config": {}},
        ],
        mcp_servers={},
        # Cloud metadata endpoints hand out credentials: never reachable from a session.
        network_access={
            "allowed": None,
            "blocked": ["169.254.169.254", "metadata.google.internal"],
        },
        initial_files=[],
        is_built_in=True,
        tags=["built-in"],
    )


def remove_generic(apps: Any, schema_editor: Any) -> None:
    apps.get_model("tasks", "Harness").objects.filter(org__isnull=True, name="generic").delete()


class Migration(migrations.Migration):
    dependencies = [("tasks", "0003_harness_definitions")]
    operations = [migrations.RunPython(create_generic, remove_generic)]
