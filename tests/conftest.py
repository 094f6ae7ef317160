"""Shared fixtures: an org with a user and two harness apps, and an outsider org.

Only fixtures live here; the helpers they use (and tests import) are in tests/helpers.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from tests.harness_schema import check_response
from tests.helpers import Harness, World, build_world


@pytest.fixture(scope="session", autouse=True)
def _no_persistent_connections_in_worker_threads() -> None:
    """Consumers reach the database from asgiref's worker threads, whose connections
    outlive the test when kept for ``CONN_MAX_AGE``; Postgres then refuses to drop the
    test database ("being accessed by other users"). With 0, each
    ``database_sync_to_async`` call closes its connection when it is done."""
    from django.db import connections

    connections.settings["default"]["CONN_MAX_AGE"] = 0
    # Postgres runs through a per-process pool (ETHER_DB_POOL_SIZE, 10). The race tests
    # are up to 64 concurrent "requests" in this one process: with 10 connections the rest
    # would queue for a slot and, on a loaded machine, time out into 503s.
    pool = connections.settings["default"].get("OPTIONS", {}).get("pool")
    if isinstance(pool, dict):
        pool["max_size"] = 80
        connections["default"].close_pool()


@pytest.fixture(autouse=True)
def _v1_harness_responses_fit_everruns_schema(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every ``/v1/harness*`` response any test gets through Django's test client is
    checked against Everruns' published OpenAPI (tests/harness_schema.py): the test fails
    at the call that answered out of schema."""
    from django.test import Client

    original = Client.request

    def request(self: Client, **environ: Any) -> Any:
        response = original(self, **environ)
        path = environ.get("PATH_INFO", "")
        if path.startswith("/v1/harness") and not getattr(response, "streaming", False):
            check_response(
                environ["REQUEST_METHOD"],
                path,
                response.status_code,
                response.content,
                response.get("Content-Type", ""),
            )
        return response

    monkeypatch.setattr(Client, "request", request)


@pytest.fixture
def close_worker_connections() -> Iterator[None]:
    """For tests that call views through ``AsyncClient``: the test client keeps
    ``request_finished`` from closing connections, so the connection a sync view opened
    in asgiref's shared worker thread stays open. Closed here, in that same thread
    (``thread_sensitive`` with no outer event loop runs there)."""
    yield
    from asgiref.sync import sync_to_async
    from django.db import connections

    asyncio.run(sync_to_async(connections.close_all, thread_sensitive=True)())


@pytest.fixture
def world(db: Any) -> World:
    """Org ``acme`` with member ``alice`` (and her token), harness apps ``builder`` and
    ``rival``; org ``globex`` with ``mallory`` and its own ``builder``."""
    return build_world()


@pytest.fixture
def task(world: World) -> Any:
    """A ready task of ``acme`` owned by ``alice``, with the factory's title, prompt,
    definition of done and branch scope (``ether/*``). A test whose meaning depends on
    one of those makes its own task with it: ``world.task(branch_scope="ether/*")``."""
    return world.task()


@pytest.fixture
def harness(world: World) -> Harness:
    return world.harness()


@pytest.fixture
def claimed(world: World, task: Any, harness: Harness) -> dict[str, Any]:
    """``task``, claimed once by ``builder``: the claim's body (``run_id``, ``lease_epoch``
    1, ``lease_expires_at``, ``bundle``)."""
    response = harness.claim(task.public_id)
    assert response.status_code == 200, response.content
    return response.json()
