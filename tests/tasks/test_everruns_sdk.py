"""Everruns' own Python SDK (``everruns-sdk`` from PyPI, unmodified) against a real daphne
(docs/contract.md §4, "Everruns compatibility"; issue 17).

The SDK sends ``Authorization: <token>`` with no ``Bearer``, reads lists from ``data``
only, and parses every harness into its pydantic ``Harness``; it has no method for copy,
check-name, config, import, preview or stats, so those go through its own transport
(``client._get``/``_post``, what its agents' ``copy`` uses) with its own headers.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from everruns_sdk import Everruns
from everruns_sdk.errors import ApiError, AuthenticationError, NotFoundError
from everruns_sdk.models import AgentCapabilityConfig, InitialFile, NetworkAccessList

from tasks.models import Harness, HarnessApp, HarnessStatus
from tests.harness_schema import check_response, ensure_built_ins
from tests.servers import daphne

pytestmark = pytest.mark.django_db(transaction=True)


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


async def sdk_session(base: str, token: str, world: Any) -> dict[str, Any]:
    """Every harness method of the SDK, in the order a user meets them."""
    seen: dict[str, Any] = {"checked": 0}

    async def fits_everruns_schema(response: httpx.Response) -> None:
        # Every answer the SDK gets is checked against Everruns' OpenAPI, as in-process.
        await response.aread()
        seen["checked"] += check_response(
            response.request.method,
            response.request.url.path,
            response.status_code,
            response.content,
            response.headers.get("content-type", ""),
        )

    async with Everruns(api_key=token, base_url=base) as client:
        client._client.event_hooks["response"].append(fits_everruns_schema)
        h = client.harnesses
        listed = await h.list()
        seen["listed"] = [x.name for x in listed]
        generic = await h.get("generic")
        seen["generic_network"] = generic.network_access
        seen["default"] = (await h.get("default")).name

        base_def = await h.create(
            "reviewer-base",
            "Review carefully.",
            display_name="Reviewer base",
            description="Parent of the team reviewer.",
            capabilities=[AgentCapabilityConfig(ref="web_fetch", config={})],
            initial_files=[InitialFile(path="/workspace/NOTES.md", content="notes")],
            network_access=NetworkAccessList(allowed=["*.example.com"], blocked=[]),
            tags=["review"],
        )
        seen["base"] = base_def
        # The SDK's default NetworkAccessList sends allowed: [] — "no allow-list here".
        child = await h.create(
            "reviewer-team",
            "Small PRs.",
            parent_harness_id=base_def.id,
            network_access=NetworkAccessList(blocked=["169.254.169.254"]),
        )
        seen["child"] = child
        resolved = await client._get(f"/harnesses/{child.id}?resolved=true")
        seen["child_resolved_network"] = resolved["network_access"]
        # Created with only a name, as Everruns allows.
        seen["bare"] = await client._post("/harnesses", {"name": "bare"})

        seen["search"] = [x.name for x in await h.search("reviewer")]
        updated = await h.update(child.id, description="Team reviewer.", tags=["team"])
        seen["updated"] = updated
        copy = await client._post(f"/harnesses/{child.id}/copy", {})
        seen["copy"] = copy
        seen["archived"] = await h.update(copy["id"], status="archived")
        seen["unarchived"] = await h.update(copy["id"], status="active")
        seen["deleted_by_status"] = await h.update(copy["id"], status="deleted")
        await h.delete("bare")  # archives
        await h.delete("bare")  # deletes
        try:
            await h.get("bare")
        except NotFoundError as error:
            seen["bare_gone"] = error.status_code

        seen["examples"] = await h.list_examples()
        seen["check_free"] = await client._get("/harnesses/check-name?name=fresh-name")
        seen["check_taken"] = await client._get("/harnesses/check-name?name=reviewer-team")
        seen["config"] = await client._get("/harnesses/config")
        example = seen["examples"][0].name
        seen["imported"] = await client._post(f"/harnesses/import?from-example={example}", {})
        seen["preview"] = await client._post(
            "/harnesses/preview",
            {"system_prompt": "Draft.", "parent_harness_id": base_def.id},
        )
        seen["stats"] = await client._get(f"/harnesses/{child.id}/stats")
    return seen


def test_the_everruns_sdk_manages_harnesses_unmodified(world, tmp_path):
    ensure_built_ins()
    # More than one page of Ether's default 50: the SDK reads only `data`.
    Harness.objects.bulk_create(
        Harness(org=world.org, name=f"bulk-{n:02d}", display_name=f"Bulk {n}") for n in range(55)
    )
    with daphne(tmp_path) as server:
        seen = run(sdk_session(server.http, world.token, world))

    assert seen["checked"] == 23  # every call of the session, against Everruns' schema
    assert len(seen["listed"]) == 56 and "generic" in seen["listed"]
    assert seen["generic_network"].allowed == [] and seen["generic_network"].blocked
    assert seen["default"] == "generic"
    assert seen["base"].parent_harness_id is None and seen["base"].tags == ["review"]
    assert seen["base"].initial_files[0].path == "/NOTES.md"
    assert seen["child"].parent_harness_id == seen["base"].id
    # allowed: [] from the child is no allow-list: the parent's stays, not "allow nothing".
    assert seen["child_resolved_network"] == {
        "allowed": ["*.example.com"],
        "blocked": ["169.254.169.254"],
    }
    assert seen["bare"]["name"] == "bare" and seen["bare"]["system_prompt"] == ""
    assert seen["search"] == ["reviewer-base", "reviewer-team"]
    assert seen["updated"].description == "Team reviewer." and seen["updated"].tags == ["team"]
    assert seen["copy"]["name"] == "reviewer-team-copy"
    assert seen["archived"].status == "archived" and seen["archived"].archived_at
    assert seen["unarchived"].status == "active" and seen["unarchived"].archived_at is None
    assert seen["deleted_by_status"].status == "deleted"
    assert seen["bare_gone"] == 404
    assert {e.name for e in seen["examples"]} >= {"careful-reviewer", "test-first-coder"}
    assert seen["check_free"] == {"available": True}
    assert seen["check_taken"]["available"] is False
    assert seen["config"]["policies"]["create"] is True
    assert seen["imported"]["name"] == seen["examples"][0].name
    assert seen["preview"]["system_prompt"] == "Review carefully.\n\nDraft."
    assert seen["stats"]["session_count"] == 0

    # What the server stored.
    rows = {h.name: h for h in Harness.objects.filter(org=world.org)}
    assert rows["reviewer-team"].parent == rows["reviewer-base"]
    assert rows["reviewer-team"].description == "Team reviewer."
    assert rows["reviewer-team"].network_access == {"allowed": [], "blocked": ["169.254.169.254"]}
    assert rows["reviewer-team-copy"].status == HarnessStatus.DELETED
    assert rows["bare"].status == HarnessStatus.DELETED
    assert rows[seen["imported"]["name"]].system_prompt
    assert not HarnessApp.objects.filter(harness__org=world.org).exists()


def test_the_sdk_sees_401_for_a_wrong_token_and_a_harness_key(world, tmp_path):
    async def attempt(token: str) -> int:
        async with Everruns(api_key=token, base_url=server.http) as client:
            try:
                await client.harnesses.list()
            except ApiError as error:
                assert isinstance(error, AuthenticationError)
                return error.status_code
            return 200

    with daphne(tmp_path) as server:
        assert run(attempt(world.token)) == 200
        assert run(attempt("eth_pat_" + "x" * 43)) == 401
        assert run(attempt(world.key)) == 401  # a harness app key is not a person
        assert run(attempt("evr_pat_0123456789")) == 401
