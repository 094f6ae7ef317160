"""Helpers the tests share: HTTP callers, the world of fixtures, problem and stored.

Fixtures live in ``tests/conftest.py``; everything a test imports lives here.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import psycopg
import time_machine
from asgiref.testing import ApplicationCommunicator
from channels.testing import WebsocketCommunicator
from django.db import connection, transaction
from django.test import Client
from django.utils import timezone

from tasks.models import Task
from tests import factories


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


# Transaction control, which Django logs on SQLite and not always on Postgres: not counted
# where a test counts the statements that read or write rows.
CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE SAVEPOINT")


def row_statements(captured: Any) -> list[str]:
    """The SQL a ``CaptureQueriesContext`` saw, without transaction control."""
    return [q["sql"] for q in captured.captured_queries if not q["sql"].startswith(CONTROL)]


def room_in_rate_window(seconds: int, need: float) -> None:
    """Waits, when needed, until the rate limiter's current window (``seconds`` long) has
    ``need`` seconds left. The windows are fixed on the clock (api/ratelimit.py), so a test
    that counts requests against a limit and crosses a boundary finds its counts gone."""
    left = seconds - time.time() % seconds
    if left < need:
        time.sleep(left + 0.1)


def past_expiry(run_id: str) -> Any:
    """A frozen clock one second past this run's lease expiry (``with past_expiry(run_id):``)."""
    from tasks.models import Run

    run = Run.objects.get(public_id=run_id)
    return time_machine.travel(run.lease_expires_at + timedelta(seconds=1), tick=False)


def definition_form(org: Any, **fields: Any) -> dict[str, Any]:
    """The admin's harness-definition form, filled in; ``fields`` override."""
    data = {
        "org": org.pk,
        "name": "admin-made",
        "display_name": "Admin made",
        "description": "",
        "system_prompt": "From the admin.",
        "parent": "",
        "default_model_id": "",
        "capabilities": "[]",
        "mcp_servers": "{}",
        "network_access": "null",
        "initial_files": "[]",
        "tags": "[]",
    }
    data.update(fields)
    return data


def staff_client(user: Any) -> Client:
    """A browser signed in to the admin as ``user``, made staff and superuser here."""
    user.is_staff = user.is_superuser = True
    user.save()
    client = Client()
    client.force_login(user)
    return client


# --- realtime (channels' WebsocketCommunicator) ----------------------------------------


async def ask(communicator: WebsocketCommunicator, frame: dict[str, Any]) -> dict[str, Any]:
    await communicator.send_json_to(frame)
    return await communicator.receive_json_from(timeout=5)


async def closed_with(communicator: WebsocketCommunicator, timeout: float = 5) -> int:
    """The close code the server sent (frames before it are skipped)."""
    while True:
        output = await communicator.receive_output(timeout=timeout)
        if output["type"] == "websocket.close":
            return output.get("code", 1000)


async def asgi_http(
    app: Any,
    method: str,
    path: str,
    *,
    body: bytes = b"",
    query: bytes = b"",
    headers: list[tuple[bytes, bytes]] | None = None,
    timeout: float = 10,
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """One HTTP request through an ASGI application (what daphne would hand it): the
    status, the raw headers and the whole body."""
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "root_path": "",
        "headers": headers if headers is not None else [(b"host", b"127.0.0.1")],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8080),
    }
    communicator = ApplicationCommunicator(app, scope)
    await communicator.send_input({"type": "http.request", "body": body, "more_body": False})
    start = await communicator.receive_output(timeout)
    content = b""
    while True:
        message = await communicator.receive_output(timeout)
        content += message.get("body", b"")
        if not message.get("more_body"):
            break
    # Let the application finish, as a server does: Django closes the response after its
    # last body message, which fires request_finished and returns the request's database
    # connection. Abandoned here, each request through Django kept a pooled Postgres
    # connection until the suite ran out of them (80, at ~80% of a full run).
    await communicator.wait(timeout)
    return start["status"], start["headers"], content


def raw_connection() -> psycopg.Connection[Any]:
    """A connection of the test's own, outside Django and its pool, to hold a lock with."""
    db = connection.settings_dict
    return psycopg.connect(
        host=db["HOST"] or None,
        port=db["PORT"] or None,
        user=db["USER"] or None,
        password=db["PASSWORD"] or None,
        dbname=db["NAME"],
        application_name="ether-fault-test-lock",
    )


@contextmanager
def holding_task_lock(task: Any) -> Iterator[threading.Event]:
    """Another thread holds ``task``'s lock from the start of the block: its row ``FOR
    UPDATE`` and an update of it, so on SQLite the one write lock too (``BEGIN
    IMMEDIATE``). It lets go when the event yielded is set, or when the block ends."""
    locked, release = threading.Event(), threading.Event()

    def hold() -> None:
        try:
            with transaction.atomic():
                Task.objects.select_for_update().get(pk=task.pk)
                Task.objects.filter(pk=task.pk).update(updated_at=timezone.now())
                locked.set()
                release.wait(30)
        finally:
            connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert locked.wait(30), "the task's lock was never taken"
        yield release
    finally:
        release.set()
        holder.join(30)
