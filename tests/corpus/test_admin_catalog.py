"""The admin's writes of tools, skills and compactions go through ``corpus.services``."""

from __future__ import annotations

import pytest

from corpus.models import Compaction, Document, DocumentKind, Skill, Tool
from corpus.services import document_create, tool_save
from tests.helpers import staff_client


@pytest.fixture
def staff(world):
    return staff_client(world.user)


def test_admin_adds_a_tool_with_an_object_schema(world, staff):
    response = staff.post(
        "/admin/corpus/tool/add/",
        {
            "org": world.org.pk,
            "name": "grep",
            "description": "Search files",
            "input_schema": '{"type": "object", "properties": {"pattern": {"type": "string"}}}',
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    tool = Tool.objects.get(org=world.org, name="grep")
    assert tool.input_schema["properties"] == {"pattern": {"type": "string"}}


def test_admin_refuses_a_tool_schema_that_is_not_an_object(world, staff):
    response = staff.post(
        "/admin/corpus/tool/add/",
        {"org": world.org.pk, "name": "grep", "description": "x", "input_schema": "[1, 2]"},
    )
    assert response.status_code == 200
    assert not Tool.objects.filter(name="grep").exists()


def test_admin_deletes_selected_tools(world, staff):
    tools = [
        tool_save(tool=Tool(), org=world.org, name=name, description="d", input_schema={})
        for name in ("a", "b")
    ]
    response = staff.post(
        "/admin/corpus/tool/",
        {"action": "delete_selected", "_selected_action": [t.pk for t in tools], "post": "yes"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert not Tool.objects.filter(org=world.org).exists()


def test_admin_adds_a_skill_with_its_markdown_as_typed(world, staff):
    response = staff.post(
        "/admin/corpus/skill/add/",
        {
            "org": world.org.pk,
            "name": "triage",
            "domain": "support",
            "description": "How to triage",
            "body": "# Triage\r\n\r\n- read the logs\r\n",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Skill.objects.get(org=world.org, name="triage").body == "# Triage\n\n- read the logs\n"


def test_admin_deletes_a_compaction_and_keeps_its_memory(world, staff, task):
    memory = document_create(
        org=world.org, kind=DocumentKind.MEMORY, body="# Memory\n", task_ref=task.public_id
    )
    compaction = Compaction.objects.create(
        org=world.org,
        task_ref=task.public_id,
        memory=memory,
        memory_version=1,
        bytes_before=100,
        bytes_after=9,
        budget_bytes=50,
        summariser="test",
    )
    response = staff.post(f"/admin/corpus/compaction/{compaction.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302, response.content.decode()[:2000]
    assert not Compaction.objects.filter(pk=compaction.pk).exists()
    assert Document.objects.filter(pk=memory.pk).exists()
