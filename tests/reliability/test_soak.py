"""The soak: steady mixed load on one real daphne process for ETHER_SOAK_SECONDS (default
1800). Not in CI: ``pytest -m soak tests/reliability/test_soak.py`` (README, Reliability).

Each round a person creates a task, a WebSocket client subscribes to it, the harness
claims, heartbeats, narrates five steps, asks nothing and submits; the person reads the
timeline and the delivery. Passes when no request failed, every step reached the
subscriber, every topic's seqs are gapless, and the server's resident memory at the end
is within 10% of what it was after the warm-up."""

from __future__ import annotations

import json
import os
import time
import uuid
from typing import Any

import pytest
from websockets.sync.client import connect

from delivery.models import Delivery
from tasks.models import Event
from tests.servers import Server, daphne

pytestmark = [pytest.mark.soak, pytest.mark.django_db(transaction=True)]

SECONDS = float(os.environ.get("ETHER_SOAK_SECONDS", "1800"))
WARMUP_ROUNDS = 20


def ok(result: tuple[int, Any], status: int) -> Any:
    assert result[0] == status, result
    return result[1]


def one_round(server: Server, world: Any, n: int) -> None:
    task = ok(
        server.call(
            "POST",
            "/api/tasks",
            world.token,
            {
                "title": f"Soak {n}",
                "prompt": "Keep going.",
                "definition_of_done": ["done"],
                "project": world.project_slug,
                "repo": world.repo_name,
            },
        ),
        201,
    )
    task_id = task["id"]
    base = f"/api/harness/tasks/{task_id}"
    topic = f"tasks/{task_id}"
    with connect(f"{server.ws}/api/realtime?token={world.token}", open_timeout=10) as ws:
        ws.send(json.dumps({"action": "subscribe", "topics": [topic]}))
        assert json.loads(ws.recv(timeout=10))["type"] == "subscribed"
        run_id = ok(server.call("POST", f"{base}/claim", world.key, {"app_id": "builder"}), 200)[
            "run_id"
        ]
        ok(server.call("POST", f"{base}/heartbeat", world.key, {"run_id": run_id}), 200)
        for s in range(5):
            body = {"run_id": run_id, "phase": "coding_agent", "user_message": f"{n}.{s}"}
            ok(server.call("POST", f"{base}/steps", world.key, body), 201)
        result = {
            "run_id": run_id,
            "status": "submitted",
            "agent_status": "Opened PR",
            "artifact": {
                "pr": {
                    "number": n + 1,
                    "branch": f"ether/soak-{n}",
                    "url": f"https://github.com/{world.repo_name}/pull/{n + 1}",
                }
            },
        }
        ok(server.call("POST", f"{base}/result", world.key, result), 200)
        seen: list[str] = []
        delivered = False
        while len(seen) < 5 or not delivered:
            frame = json.loads(ws.recv(timeout=30))
            if frame.get("event") == "os.harness.step":
                seen.append(frame["user_message"])
            delivered = delivered or frame.get("event") == "task.delivered"
        assert seen == [f"{n}.{s}" for s in range(5)]
    ok(server.call("GET", f"/api/tasks/{task_id}/timeline", world.token), 200)
    ok(server.call("GET", f"/api/tasks/{task_id}/delivery", world.token), 200)


def test_soak(world, tmp_path):
    repo = world.task().repo
    world.project_slug = repo.project.slug
    world.repo_name = repo.full_name
    # As in production: DEBUG off. With DEBUG on, Django keeps the last 9,000 queries of
    # every connection in memory, which alone grows the process for the first many minutes.
    production = {
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": "soak-" + uuid.uuid4().hex,
        "ETHER_SSL_REDIRECT": "0",  # plain http on loopback
        "ETHER_LOG_LEVEL": "WARNING",
    }
    with daphne(tmp_path, **production) as server:
        for n in range(WARMUP_ROUNDS):
            one_round(server, world, n)
        start_rss = server.rss_kib()
        rounds = WARMUP_ROUNDS
        deadline = time.monotonic() + SECONDS
        samples = []
        while time.monotonic() < deadline:
            one_round(server, world, rounds)
            rounds += 1
            if rounds % 50 == 0:
                samples.append(server.rss_kib())
        end_rss = server.rss_kib()
    print(
        f"\nsoak: {rounds} rounds in {SECONDS:.0f} s, RSS {start_rss} KiB after warm-up, "
        f"{end_rss} KiB at the end, samples {samples}"
    )
    assert Delivery.objects.count() == rounds
    for topic in set(Event.objects.values_list("topic", flat=True)):
        seqs = list(Event.objects.filter(topic=topic).order_by("seq").values_list("seq", flat=True))
        assert seqs == list(range(1, len(seqs) + 1)), topic
    assert end_rss <= start_rss * 1.10, (start_rss, end_rss, samples)
