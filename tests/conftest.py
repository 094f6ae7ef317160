"""Shared fixtures: an org with a user and two harness apps, and an outsider org."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client

from tests import factories


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


class Caller:
    """An HTTP client that speaks JSON with one bearer credential (or none)."""

    def __init__(self, secret: str | None) -> None:
        self.client = Client()
        self.headers = {"HTTP_AUTHORIZATION": f"Bearer {secret}"} if secret else {}

    def get(self, path: str, **extra: Any) -> Any:
        return self.client.get(path, **self.headers, **extra)

    def post(
        self, path: str, data: Any = None, *, raw: str | bytes | None = None, **extra: Any
    ) -> Any:
        payload = raw if raw is not None else json.dumps({} if data is None else data)
        extra.setdefault("content_type", "application/json")
        return self.client.post(path, payload, **self.headers, **extra)

    def method(self, verb: str, path: str, **extra: Any) -> Any:
        return getattr(self.client, verb.lower())(path, **self.headers, **extra)


class Harness(Caller):
    """A harness app's view of one task's routes."""

    def __init__(self, key: str, app_id: str) -> None:
        super().__init__(key)
        self.app_id = app_id

    @staticmethod
    def url(task_id: str, route: str) -> str:
        return f"/api/harness/tasks/{task_id}/{route}"

    def claim(self, task_id: str, **extra: Any) -> Any:
        return self.post(self.url(task_id, "claim"), {"app_id": self.app_id}, **extra)

    def heartbeat(self, task_id: str, run_id: str, **body: Any) -> Any:
        return self.post(self.url(task_id, "heartbeat"), {"run_id": run_id, **body})

    def step(self, task_id: str, run_id: str, message: str = "Working…", **body: Any) -> Any:
        data = {"run_id": run_id, "phase": "coding_agent", "user_message": message, **body}
        return self.post(self.url(task_id, "steps"), data)

    def interrupt(self, task_id: str, run_id: str, question: str = "Which DB?", **body: Any) -> Any:
        return self.post(
            self.url(task_id, "interrupt"), {"run_id": run_id, "question": question, **body}
        )

    def result(self, task_id: str, run_id: str, status: str = "no_changes", **body: Any) -> Any:
        data: dict[str, Any] = {"run_id": run_id, "status": status, "agent_status": "done"}
        if status == "no_changes":
            data["no_changes_reason"] = "Already fixed upstream."
        if status == "blocked":
            data["question"] = "Which branch should I target?"
        data.update(body)
        return self.post(self.url(task_id, "result"), data)


@dataclass
class World:
    org: Any
    user: Any
    token: str
    app: Any
    key: str
    rival: Any
    rival_key: str
    outsider_org: Any
    outsider_user: Any
    outsider_token: str
    outsider_app: Any
    outsider_key: str

    def harness(self) -> Harness:
        return Harness(self.key, self.app.app_id)

    def rival_harness(self) -> Harness:
        return Harness(self.rival_key, self.rival.app_id)

    def outsider_harness(self) -> Harness:
        return Harness(self.outsider_key, self.outsider_app.app_id)

    def person(self) -> Caller:
        return Caller(self.token)

    def outsider(self) -> Caller:
        return Caller(self.outsider_token)

    def task(self, **fields: Any) -> Any:
        return factories.make_task(self.org, owner=self.user, **fields)


def build_world() -> World:
    org = factories.make_org("acme")
    user = factories.make_user(org, "alice")
    app, key = factories.make_app(org, "builder")
    rival, rival_key = factories.make_app(org, "rival")
    outsider_org = factories.make_org("globex")
    outsider_user = factories.make_user(outsider_org, "mallory")
    outsider_app, outsider_key = factories.make_app(outsider_org, "builder")
    return World(
        org=org,
        user=user,
        token=factories.make_token(user),
        app=app,
        key=key,
        rival=rival,
        rival_key=rival_key,
        outsider_org=outsider_org,
        outsider_user=outsider_user,
        outsider_token=factories.make_token(outsider_user),
        outsider_app=outsider_app,
        outsider_key=outsider_key,
    )


@pytest.fixture
def world(db: Any) -> World:
    return build_world()


@pytest.fixture
def task(world: World) -> Any:
    return world.task()


@pytest.fixture
def harness(world: World) -> Harness:
    return world.harness()


@pytest.fixture
def claimed(world: World, task: Any, harness: Harness) -> dict[str, Any]:
    """A task claimed by ``builder``: the claim's body."""
    response = harness.claim(task.public_id)
    assert response.status_code == 200, response.content
    return response.json()


def problem(response: Any, status: int, code: str) -> dict[str, Any]:
    """Asserts a problem document with this status and code, and returns it."""
    assert response.status_code == status, (response.status_code, response.content[:500])
    assert response["Content-Type"].startswith("application/problem+json"), response["Content-Type"]
    body = response.json()
    assert body["status"] == status
    assert body["code"] == code, body
    assert {"type", "title", "detail"} <= set(body)
    return body


def stored() -> dict[str, Any]:
    """Everything a harness write could change, to prove that a refusal changed nothing."""
    from corpus.models import Document, DocumentVersion
    from delivery.models import Delivery
    from tasks.models import Event, Interrupt, Result, Run, Step, Task

    return {
        "tasks": list(
            Task.objects.order_by("pk").values_list(
                "status", "lease_epoch", "cancel_requested", "updated_at"
            )
        ),
        "runs": list(
            Run.objects.order_by("pk").values_list(
                "status", "lease_epoch", "lease_expires_at", "ended_at", "checkpoint"
            )
        ),
        "steps": list(Step.objects.order_by("pk").values_list("public_id", flat=True)),
        "interrupts": list(
            Interrupt.objects.order_by("pk").values_list(
                "question", "answer", "answered_at", "withdrawn_at"
            )
        ),
        "results": list(Result.objects.order_by("pk").values_list("status", "fingerprint")),
        "events": Event.objects.count(),
        "deliveries": list(Delivery.objects.order_by("pk").values_list("version", "status")),
        "documents": list(Document.objects.order_by("pk").values_list("path", "version")),
        "versions": DocumentVersion.objects.count(),
    }
