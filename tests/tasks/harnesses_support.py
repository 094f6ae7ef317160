"""Helpers and fixtures shared by the harness-definition API tests (test_harnesses_api_*.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.helpers import Caller


def create(caller: Caller, **fields: Any) -> Any:
    body = {"system_prompt": "", **fields}
    return caller.post("/v1/harnesses", body)


def created(caller: Caller, **fields: Any) -> dict[str, Any]:
    response = create(caller, **fields)
    assert response.status_code == 201, response.content
    return response.json()


def patch(caller: Caller, path: str, data: Any) -> Any:
    return caller.client.patch(
        path, json.dumps(data), content_type="application/json", **caller.headers
    )


def delete(caller: Caller, path: str) -> Any:
    return caller.client.delete(path, **caller.headers)


def get(caller: Caller, ref: str, **query: str) -> Any:
    suffix = "?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else ""
    return caller.get(f"/v1/harnesses/{ref}{suffix}")


@pytest.fixture
def me(world) -> Caller:
    return world.person()


@pytest.fixture
def chain(me) -> tuple[dict, dict, dict]:
    """Three levels: base → team → leaf, each setting every merged field."""
    base = created(
        me,
        name="base",
        system_prompt="Be careful.",
        capabilities=[{"ref": "fs", "config": {"ro": True}}, {"ref": "git", "config": {}}],
        mcpServers={
            "docs": {"url": "https://docs.example.com/mcp"},
            "jira": {"url": "https://jira.example.com/mcp", "auth_mode": "api_key"},
        },
        network_access={
            "allowed": ["*.example.com", "pypi.org"],
            "blocked": ["169.254.169.254"],
        },
        initial_files=[
            {"path": "/workspace/README.md", "content": "base readme"},
            {"path": "/setup.sh", "content": "echo base", "is_readonly": True},
        ],
        default_model_id="model_base",
    )
    team = created(
        me,
        name="team",
        parent_harness_id=base["id"],
        system_prompt="Write tests.",
        capabilities=[{"ref": "git", "config": {"sign": True}}, {"ref": "web"}],
        mcpServers={"docs": {"url": "https://team-docs.example.com/mcp"}},
        network_access={"allowed": ["api.example.com", "github.com"], "blocked": ["10.0.0.0/8"]},
        initial_files=[{"path": "/README.md", "content": "team readme"}],
    )
    leaf = created(
        me,
        name="leaf",
        parent_harness_id="team",  # a parent may be named, too
        system_prompt="Small PRs.",
        mcpServers={"sentry": {"url": "https://sentry.example.com/mcp", "tool_discovery": False}},
        network_access={"blocked": ["169.254.169.254", "evil.example.com"]},
        default_model_id=None,
        tags=["team-a"],
    )
    return base, team, leaf
