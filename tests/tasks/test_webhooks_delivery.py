"""The webhook sender as it runs: real ``manage.py send_webhooks`` processes against this
test's database (SQLite file or Postgres), a real HTTP receiver on 127.0.0.1, signatures
verified with the ``standardwebhooks`` library.

- a receiver that is down for a while gets everything afterwards, in order per task;
- a sender killed with SIGKILL mid-send neither loses nor re-sends an acknowledged
  delivery (the unacknowledged one is sent again: at least once);
- two senders at once never send an acknowledged delivery twice, and keep each task's
  order;
- the SSRF guard runs again at send time.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from django.db import transaction

from tasks.models import HarnessApp, Task
from tasks.webhooks import outbox
from tasks.webhooks.models import DeliveryStatus, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from tasks.webhooks.sender import send_one
from tests.helpers import World
from tests.servers import ROOT, database_env
from tests.tasks.webhook_receiver import Received, Receiver

SHORT_RETRIES = ",".join(["0.2", "0.4", "0.8"] + ["1"] * 40)  # "ten minutes" in seconds


def wait_for(what: Callable[[], Any], timeout: float = 60.0, message: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = what()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting: {message}")


@contextmanager
def sender(tmp_path: Path, *, workers: int = 1, **env: str) -> Iterator[subprocess.Popen]:
    """One ``manage.py send_webhooks`` process on this test's database; stopped (or
    found killed) when the block ends."""
    log = tmp_path / f"sender-{time.monotonic_ns()}.log"
    child_env = {
        **os.environ,
        "DJANGO_DEBUG": "1",
        "DJANGO_SETTINGS_MODULE": "ether_site.settings",
        "ETHER_WEBHOOK_ALLOW_PRIVATE": "1",
        "ETHER_WEBHOOK_RETRY_SECONDS": SHORT_RETRIES,
        "ETHER_WEBHOOK_TIMEOUT_SECONDS": "2",
        "ETHER_WEBHOOK_CLAIM_SECONDS": "5",
        **database_env(),
        **env,
    }
    command = [sys.executable, "manage.py", "send_webhooks", "--interval", "0.1"]
    command += ["--workers", str(workers)]
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command, cwd=ROOT, env=child_env, stdout=sink, stderr=subprocess.STDOUT
        )
    try:
        wait_for(
            lambda: "sending webhooks as" in log.read_text() or process.poll() is not None,
            timeout=60,
            message="sender start",
        )
        assert process.poll() is None, log.read_text()
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


def hook(world: World, url: str, settings: Any) -> str:
    """Points ``builder`` at ``url`` through the API; its new secret."""
    settings.ETHER_WEBHOOK_ALLOW_PRIVATE = True
    person = world.person()
    response = person.client.patch(
        f"/api/harness-apps/{world.app.app_id}",
        json.dumps({"webhook_url": url}),
        content_type="application/json",
        **person.headers,
    )
    assert response.status_code == 200, response.content
    return person.post(f"/api/harness-apps/{world.app.app_id}/webhook/secret").json()["secret"]


def all_delivered() -> bool:
    return not WebhookDelivery.objects.exclude(status=DeliveryStatus.DELIVERED).exists()


def by_task(requests: list[Received], secret: str) -> dict[str, list[dict[str, Any]]]:
    """Verified bodies in arrival order, per task."""
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for request in requests:
        body = request.verify(secret)
        out[body["data"]["task_id"]].append(body)
    return out


def expected_order() -> dict[str, list[str]]:
    """Each task's webhook types in the order their changes committed."""
    out: dict[str, list[str]] = defaultdict(list)
    for delivery in WebhookDelivery.objects.select_related("task").order_by("pk"):
        out[delivery.task.public_id].append(delivery.public_id)
    return out


@pytest.mark.django_db(transaction=True)
def test_receiver_down_for_a_while_gets_everything_afterwards_in_order(
    world, receiver, settings, tmp_path
):
    secret = hook(world, receiver.url, settings)
    receiver.stop()  # down: connections to its port are refused
    builder, person = world.harness(), world.person()
    with sender(tmp_path, workers=2):
        first, second, third = world.task(), world.task(), world.task()
        run_id = builder.claim(first.public_id).json()["run_id"]
        builder.interrupt(first.public_id, run_id, "Which DB?")
        person.post(f"/api/tasks/{first.public_id}/answer", {"answer": "Postgres"})
        person.post(f"/api/tasks/{first.public_id}/cancel")
        builder.claim(second.public_id)
        person.post(f"/api/tasks/{second.public_id}/release")
        assert WebhookDelivery.objects.count() == 6
        # Failed attempts pile up, each recorded, and nothing is given up.
        finished = WebhookAttempt.objects.filter(ok=False, finished_at__isnull=False)
        wait_for(lambda: finished.count() >= 8, message="retries")
        assert not WebhookDelivery.objects.filter(status=DeliveryStatus.DELIVERED).exists()
        endpoint = WebhookEndpoint.objects.get(app=world.app)
        assert endpoint.failures_in_row >= 8 and endpoint.last_success_at is None
        failed = finished.first()
        assert "Connection refused" in failed.error or "ConnectionRefused" in failed.error
        # Only the head of each task's line is tried while it fails.
        tried = set(WebhookAttempt.objects.values_list("delivery__public_id", flat=True))
        heads = {ids[0] for ids in expected_order().values()}
        assert tried == heads

        restarted = Receiver(port=receiver.port).start()  # back, on the same URL
        try:
            wait_for(all_delivered, message="everything delivered after the outage")
        finally:
            restarted.stop()

    acked = restarted.acked
    assert len(acked) == len(restarted.requests) == 6  # each once, none refused
    arrived = by_task(acked, secret)
    assert {t: [b["type"] for b in bodies] for t, bodies in arrived.items()} == {
        first.public_id: ["task.ready", "task.answered", "task.cancel_requested"],
        second.public_id: ["task.ready", "task.ready"],
        third.public_id: ["task.ready"],
    }
    ids_in_order = defaultdict(list)
    for request in acked:
        ids_in_order[request.json["data"]["task_id"]].append(request.id)
    assert ids_in_order == expected_order()
    endpoint.refresh_from_db()
    assert endpoint.failures_in_row == 0 and endpoint.last_success_at is not None
    assert Task.objects.get(pk=first.pk).status == "cancelled"


@pytest.mark.django_db(transaction=True)
def test_sender_killed_mid_send_loses_nothing_and_resends_nothing_acknowledged(
    world, receiver, settings, tmp_path
):
    secret = hook(world, receiver.url, settings)
    tasks = [world.task() for _ in range(4)]
    ids = list(WebhookDelivery.objects.order_by("pk").values_list("public_id", flat=True))
    assert len(ids) == 4
    receiver.hold_at = 2  # the third request is held open
    with sender(tmp_path) as doomed:
        assert receiver.held.wait(60), "the third delivery never arrived"
        delivered = set(
            WebhookDelivery.objects.filter(status=DeliveryStatus.DELIVERED).values_list(
                "public_id", flat=True
            )
        )
        assert delivered == set(ids[:2])  # recorded before the next one was sent
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(timeout=10)
    receiver.release.set()  # the held request is answered 503 into a dead socket
    wait_for(lambda: len(receiver.requests) == 3 and receiver.requests[2].status, timeout=10)
    held = WebhookDelivery.objects.get(public_id=ids[2])
    assert held.status == DeliveryStatus.PENDING  # not lost
    (open_attempt,) = held.attempt_log.all()
    assert open_attempt.finished_at is None  # the dead sender's attempt, on record

    with sender(tmp_path):
        wait_for(all_delivered, message="the second sender finishes the outbox")

    received = Counter(r.id for r in receiver.requests)
    assert received == {ids[0]: 1, ids[1]: 1, ids[2]: 2, ids[3]: 1}  # at least once
    acked = Counter(r.id for r in receiver.acked)
    assert acked == {i: 1 for i in ids}  # nothing acknowledged is sent again
    for request in receiver.acked:
        assert request.verify(secret)["type"] == "task.ready"
    attempts = list(held.attempt_log.order_by("pk"))
    assert [a.ok for a in attempts] == [False, True]
    assert attempts[0].error.startswith("interrupted")
    assert {r.json["data"]["task_id"] for r in receiver.acked} == {t.public_id for t in tasks}


@pytest.mark.django_db(transaction=True)
def test_two_senders_never_double_send_and_keep_each_tasks_order(
    world, receiver, settings, tmp_path
):
    secret = hook(world, receiver.url, settings)
    tasks = [world.task() for _ in range(5)]
    WebhookDelivery.objects.all().delete()  # only the messages below
    # Every third message fails on its first try: retries must not break the order.
    failed_once: set[str] = set()

    def flaky(request: Received) -> int | None:
        body = json.loads(request.body)
        if body["data"]["n"] % 3 == 0 and request.id not in failed_once:
            failed_once.add(request.id)
            return 500
        return None

    receiver.fail = flaky
    app = HarnessApp.objects.select_related("webhook").get(pk=world.app.pk)
    with sender(tmp_path, workers=3) as one, sender(tmp_path, workers=3) as two:
        for n in range(6):
            for task in tasks:
                with transaction.atomic():
                    outbox.webhook_enqueue(
                        apps=[app],
                        kind=outbox.MESSAGE,
                        task=task,
                        data={"n": n, "text": f"message {n}"},
                    )
        wait_for(all_delivered, timeout=90, message="30 messages delivered")
        assert one.poll() is None and two.poll() is None

    assert WebhookDelivery.objects.count() == 30
    acked = Counter(r.id for r in receiver.acked)
    assert len(acked) == 30 and set(acked.values()) == {1}
    received = Counter(r.id for r in receiver.requests)
    assert all(received[i] == 1 + (i in failed_once) for i in received)
    for task_id, bodies in by_task(receiver.acked, secret).items():
        assert [b["data"]["n"] for b in bodies] == list(range(6)), task_id
    senders = {a.sender.split("/")[0] for a in WebhookAttempt.objects.all()}
    assert len(senders) == 2, senders  # both processes took part


@pytest.mark.django_db
def test_send_time_guard_refuses_a_target_that_became_private(world, receiver, settings):
    hook(world, receiver.url, settings)
    world.task()
    settings.ETHER_WEBHOOK_ALLOW_PRIVATE = False  # e.g. the DNS answer changed since
    delivery = send_one(sender="t")
    assert delivery.status == DeliveryStatus.PENDING and delivery.attempts == 1
    assert "refused" in delivery.last_error and "loopback" in delivery.last_error
    assert receiver.requests == []  # no connection was made


@pytest.mark.django_db
def test_retries_follow_the_schedule_then_give_up(world, receiver, settings):
    hook(world, receiver.url, settings)
    settings.ETHER_WEBHOOK_RETRY_SECONDS = (0.0, 0.0)
    receiver.fail = lambda request: 500
    world.task()
    outcomes = []
    while (delivery := send_one(sender="t")) is not None:
        outcomes.append((delivery.status, delivery.attempts))
    assert outcomes == [("pending", 1), ("pending", 2), ("failed", 3)]
    given_up = WebhookDelivery.objects.get()
    assert len(receiver.requests) == 3 and given_up.last_error.startswith("HTTP 500")
    endpoint = WebhookEndpoint.objects.get(app=world.app)
    assert endpoint.failures_in_row == 3 and endpoint.last_failure_at is not None
