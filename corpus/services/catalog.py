"""Writes of an org's tool and skill catalog, and of the compaction history (the admin's)."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from accounts.models import Org
from corpus.models import Compaction, Skill, Tool


def tool_save(
    *, tool: Tool, org: Org, name: str, description: str, input_schema: dict[str, Any]
) -> Tool:
    """Creates (``tool`` unsaved) or changes a tool of the org's catalog."""
    tool.org, tool.name, tool.description, tool.input_schema = org, name, description, input_schema
    with transaction.atomic():
        tool.save()
    return tool


def tool_delete(*, tool: Tool) -> None:
    with transaction.atomic():
        tool.delete()


def skill_save(
    *, skill: Skill, org: Org, name: str, domain: str, description: str, body: str
) -> Skill:
    """Creates (``skill`` unsaved) or changes a skill of the org's catalog."""
    skill.org, skill.name, skill.domain = org, name, domain
    skill.description, skill.body = description, body
    with transaction.atomic():
        skill.save()
    return skill


def skill_delete(*, skill: Skill) -> None:
    with transaction.atomic():
        skill.delete()


def compaction_delete(*, compaction: Compaction) -> None:
    """Forgets one fold of the history. The memory document it wrote stays; if it was the
    task's latest fold, the ``working`` slice reads the one before it (or none) again."""
    with transaction.atomic():
        compaction.delete()
