"""ether_client against a real daphne: the whole harness loop through the library, and
its retry and webhook rules."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from ether_client import (
    Cancelled,
    EtherClient,
    EtherError,
    EtherUnavailable,
    Retry,
    WebhookVerificationError,
    verify_webhook,
)
from tasks.models import Interrupt, Run, RunStatus, Step, TaskMessage, TaskStatus
from tests.servers import Server, daphne

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    with daphne(tmp_path) as running:
        yield running


@pytest.fixture
def ether(server: Server, world: Any) -> Iterator[EtherClient]:
    with EtherClient(server.http, world.key, app_id=world.app.app_id, timeout=20) as client:
        yield client


def person_when(server: Server, world: Any, task_id: str, ready: str, path: str, body: Any) -> Any:
    """A person in another thread: once the task's field ``ready`` is truthy, posts ``body``."""

    def act() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            _, task = server.call("GET", f"/api/tasks/{task_id}", world.token)
            if task.get(ready):
                status, answer = server.call("POST", path, world.token, body)
                assert status in (200, 201), answer
                return
            time.sleep(0.05)

    thread = threading.Thread(target=act, daemon=True)
    thread.start()
    return thread


def test_the_harness_loop_through_the_library(server, ether, world):
    task = world.task(definition_of_done=["It works"])
    tid = task.public_id
    run = ether.claim(tid)
    assert run.task_id == tid and run.lease_epoch == 1 and run.feedback == []
    with run:  # heartbeats in the background
        first = run.step("context", "Reading the task")
        again = run.step("planning", "Planning")
        assert again["seq"] > first["seq"]
        person = person_when(
            server, world, tid, "open_question", f"/api/tasks/{tid}/answer", {"answer": "B"}
        )
        # The background heartbeat beats every 30 s here; while an answer is awaited the
        # run beats every second, so the answer comes well within 10 s.
        assert run.ask("A or B?", ["A", "B"], timeout=10) == "B"
        person.join(5)
        status, _ = server.call(
            "POST", f"/api/tasks/{tid}/messages", world.token, {"text": "Keep it small"}
        )
        assert status == 201
        deadline = time.monotonic() + 30
        while run.messages.empty() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [m["text"] for m in run.take_messages()] == ["Keep it small"]
        pack = run.context_pack()
        assert pack["docs"][0]["path"] == f"task/{tid}.md"
        result = run.result("no_changes", "Nothing to do", no_changes_reason="Already done")
    assert result["task_status"] == "no_changes"
    stored = Run.objects.get(public_id=run.run_id)
    assert stored.status == RunStatus.FINISHED
    steps = list(Step.objects.filter(run=stored).order_by("seq"))
    assert [s.client_step_id for s in steps] == [f"{run.run_id}:1", f"{run.run_id}:2"]
    assert Interrupt.objects.get(task=task).answer == "B"
    assert TaskMessage.objects.get(task=task).delivered_run == stored
    # A retried result (the same key) is answered as the first and stores nothing twice.
    assert run.result("no_changes", "Nothing to do", no_changes_reason="Already done") == result


def test_the_heartbeat_surfaces_a_cancel(server, ether, world):
    task = world.task()
    run = ether.claim(task.public_id)
    run.start_heartbeat(interval=0.2)
    status, _ = server.call("POST", f"/api/tasks/{task.public_id}/cancel", world.token, {})
    assert status == 200
    assert run.cancelled.wait(15)
    with pytest.raises(Cancelled):
        run.step("coding", "still going?")
    run.stop_heartbeat()
    assert Run.objects.get(public_id=run.run_id).end_reason == "cancelled"


def test_the_bundle_carries_feedback_given_on_reopen(server, ether, world):
    task = world.task()
    run = ether.claim(task.public_id)
    run.result("no_changes", "done", no_changes_reason="Nothing")
    reopen = {"feedback": "Also handle HEAD requests."}
    status, _ = server.call("POST", f"/api/tasks/{task.public_id}/reopen", world.token, reopen)
    assert status == 200
    again = ether.claim(task.public_id)
    assert [f["text"] for f in again.feedback] == ["Also handle HEAD requests."]


def test_the_context_pack_is_revalidated_with_its_etag(server, ether, world):
    task = world.task()
    sent: list[httpx.Request] = []
    ether.http.event_hooks["request"].append(sent.append)
    first = ether.context_pack(task.public_id)
    second = ether.context_pack(task.public_id)
    assert second == first
    assert "If-None-Match" not in sent[0].headers
    assert sent[1].headers["If-None-Match"].startswith('"pack-')
    answers: list[int] = []
    ether.http.event_hooks["response"].append(lambda r: answers.append(r.status_code))
    ether.context_pack(task.public_id)
    assert answers == [304]


def test_problems_raise_ether_error_and_a_lease_held_names_retry_after(server, world):
    task = world.task()
    with EtherClient(server.http, world.key, app_id=world.app.app_id) as ours:
        ours.claim(task.public_id)
    theirs = EtherClient(server.http, world.rival_key, app_id=world.rival.app_id)
    with theirs, pytest.raises(EtherError) as refused:
        theirs.claim(task.public_id)
    assert refused.value.status == 409 and refused.value.code == "lease_held"
    assert refused.value.retry_after and refused.value.retry_after > 0
    assert task.__class__.objects.get(pk=task.pk).status == TaskStatus.IN_PROGRESS


# --- retries (a scripted transport: the rules of the client itself) ---------------------


def scripted(answers: list[httpx.Response | Exception]) -> tuple[httpx.MockTransport, list]:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    return httpx.MockTransport(handle), seen


def problem(status: int, code: str, **headers: str) -> httpx.Response:
    body = {"type": "about:blank", "title": code, "status": status, "detail": code, "code": code}
    return httpx.Response(status, json=body, headers=headers)


def test_retries_honour_retry_after_and_send_the_same_idempotency_key():
    transport, seen = scripted(
        [
            problem(503, "database_unavailable", **{"Retry-After": "2"}),
            httpx.ConnectError("refused"),
            problem(409, "request_in_flight", **{"Retry-After": "1"}),
            httpx.Response(201, json={"step_id": "step_x", "seq": 3}),
        ]
    )
    slept: list[float] = []
    client = EtherClient(
        "http://ether.test", "k", app_id="a", transport=transport, sleep=slept.append
    )
    assert client.post_json("/api/x", {"a": 1}) == {"step_id": "step_x", "seq": 3}
    assert slept == [2.0, 1.0, 1.0]  # Retry-After, backoff (0.5 * 2), Retry-After
    keys = {r.headers["Idempotency-Key"] for r in seen}
    assert len(seen) == 4 and len(keys) == 1


def test_a_refusal_is_not_retried_and_retries_give_up():
    transport, seen = scripted([problem(409, "lease_lost")])
    client = EtherClient("http://ether.test", "k", app_id="a", transport=transport, sleep=print)
    with pytest.raises(EtherError, match="lease_lost"):
        client.post_json("/api/x", {})
    assert len(seen) == 1
    transport, seen = scripted([problem(503, "database_unavailable")] * 3)
    client = EtherClient(
        "http://ether.test",
        "k",
        app_id="a",
        transport=transport,
        retry=Retry(attempts=3, base=0.01),
        sleep=lambda s: None,
    )
    with pytest.raises(EtherUnavailable, match="gave up"):
        client.get_json("/api/y")
    assert len(seen) == 3


# --- webhooks ---------------------------------------------------------------------------


def test_verify_webhook_accepts_a_signed_body_and_refuses_a_tampered_one():
    secret = "whsec_" + base64.b64encode(b"s" * 24).decode()
    body = json.dumps({"type": "task.ready", "timestamp": "x", "data": {"task_id": "t"}}).encode()
    now = datetime.now(UTC)
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign("msg_1", now, body),
    }
    assert verify_webhook(secret, body, headers)["type"] == "task.ready"
    with pytest.raises(WebhookVerificationError):
        verify_webhook(secret, body.replace(b"task.ready", b"task.other"), headers)
    with pytest.raises(WebhookVerificationError):
        verify_webhook("whsec_" + base64.b64encode(b"x" * 24).decode(), body, headers)
    with pytest.raises(WebhookVerificationError):
        verify_webhook(secret, body, {**headers, "webhook-timestamp": "1000"})
