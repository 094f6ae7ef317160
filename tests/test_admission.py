"""Past capacity, a server refuses fast and stores nothing half-done (issue 18, api.admission).

Real concurrent clients against a real daphne with a small admission limit: every answer
is a step stored whole (201) or a refusal (503 ``overloaded`` with ``Retry-After``, a
problem document) that stored nothing; the task's event log stays gapless. No timings are
asserted: the benchmarks measure how fast (bench/bench_steps.py).
"""

from __future__ import annotations

import asyncio
import http.client
import json
import threading
from typing import Any

import pytest

from api.admission import Gate
from tasks.models import Event, Step
from tests.servers import daphne


def _post(port: int, path: str, key: str, body: dict[str, Any], **headers: str) -> tuple:
    client = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        client.request(
            "POST",
            path,
            body=json.dumps(body),
            headers={
                "Authorization": f"Bearer {key}",
                "Content-Type": "application/json",
                **headers,
            },
        )
        response = client.getresponse()
        return response.status, dict(response.getheaders()), json.loads(response.read() or b"null")
    finally:
        client.close()


def _burst(count: int, call: Any) -> list[tuple]:
    """``count`` requests from as many threads, released together."""
    start = threading.Barrier(count)
    results: list[tuple | None] = [None] * count

    def one(i: int) -> None:
        start.wait()
        results[i] = call(i)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert all(r is not None for r in results)
    return results  # type: ignore[return-value]


@pytest.mark.django_db(transaction=True)
def test_a_burst_past_capacity_is_refused_whole_and_the_rest_is_stored_whole(world, tmp_path):
    harness = world.harness()
    task = world.task()
    tid = task.public_id
    run = harness.claim(tid).json()["run_id"]
    # One write at a time and no queue: of 40 steps sent together, those that find the
    # one slot taken are refused at once.
    limits = {
        "ETHER_MAX_INFLIGHT_WRITES": "1",
        "ETHER_MAX_INFLIGHT_REQUESTS": "4",
        "ETHER_ADMISSION_WAIT_MS": "0",
        "ETHER_MAX_QUEUED": "0",
        "ETHER_RATE_HARNESS": "off",
    }
    with daphne(tmp_path, **limits) as server:
        path = f"/api/harness/tasks/{tid}/steps"
        results = _burst(
            40,
            lambda i: _post(
                server.port,
                path,
                world.key,
                {"run_id": run, "phase": "coding_agent", "user_message": f"step {i}"},
                **{"Idempotency-Key": f"burst-{i}"},
            ),
        )
        statuses = sorted(status for status, _h, _b in results)
        assert set(statuses) <= {201, 503}, statuses
        assert 201 in statuses and 503 in statuses, statuses
        for status, headers, body in results:
            if status == 503:
                assert headers["Retry-After"] == "1"
                assert headers["Content-Type"] == "application/problem+json"
                assert body["status"] == 503 and body["code"] == "overloaded", body
        # A refused request was never run: its Idempotency-Key is free, and the retry
        # (as Retry-After asks) is stored like any step.
        refused = next(i for i, (status, _h, _b) in enumerate(results) if status == 503)
        retry = _post(
            server.port,
            path,
            world.key,
            {"run_id": run, "phase": "coding_agent", "user_message": f"step {refused}"},
            **{"Idempotency-Key": f"burst-{refused}"},
        )
        assert retry[0] == 201, retry
    accepted = {b["step_id"] for s, _h, b in results if s == 201} | {retry[2]["step_id"]}
    stored = set(Step.objects.filter(task=task).values_list("public_id", flat=True))
    assert stored == accepted
    messages = set(Step.objects.filter(task=task).values_list("user_message", flat=True))
    wanted = {f"step {i}" for i, (s, _h, _b) in enumerate(results) if s == 201}
    assert messages == wanted | {f"step {refused}"}
    # Every stored step has its two events, and the task's log has no gap.
    seqs = list(
        Event.objects.filter(topic=f"tasks/{tid}").order_by("seq").values_list("seq", flat=True)
    )
    assert seqs == list(range(1, len(seqs) + 1))
    assert Event.objects.filter(topic=f"tasks/{tid}", name="os.harness.step").count() == len(
        accepted
    )


@pytest.mark.django_db(transaction=True)
def test_reads_and_pages_are_not_refused_for_writes_in_flight(world, tmp_path):
    """The write limit is for writes: with every write slot taken, a read still runs (up
    to the request limit), and pages outside the API are never limited."""
    harness = world.harness()
    tid = world.task().public_id
    run = harness.claim(tid).json()["run_id"]
    limits = {
        "ETHER_MAX_INFLIGHT_WRITES": "1",
        "ETHER_MAX_INFLIGHT_REQUESTS": "50",
        "ETHER_ADMISSION_WAIT_MS": "0",
        "ETHER_MAX_QUEUED": "0",
        "ETHER_RATE_HARNESS": "off",
    }
    with daphne(tmp_path, **limits) as server:

        def call(i: int) -> tuple:
            if i % 2:
                return _post(
                    server.port,
                    f"/api/harness/tasks/{tid}/steps",
                    world.key,
                    {"run_id": run, "phase": "coding_agent", "user_message": f"s{i}"},
                )
            client = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
            try:
                client.request(
                    "GET",
                    f"/api/harness/context/doc/task/{tid}.md?task_id={tid}",
                    headers={"Authorization": f"Bearer {world.key}"},
                )
                response = client.getresponse()
                response.read()
                return response.status, {}, None
            finally:
                client.close()

        results = _burst(20, call)
    reads = [status for i, (status, _h, _b) in enumerate(results) if i % 2 == 0]
    writes = [status for i, (status, _h, _b) in enumerate(results) if i % 2]
    assert reads == [200] * 10
    assert set(writes) <= {201, 503}
    assert Step.objects.filter(task__public_id=tid).count() == writes.count(201)


def test_the_gate_hands_slots_over_in_order_and_bounds_its_queue():
    async def scenario() -> list[str]:
        gate = Gate(1)
        log: list[str] = []
        assert await gate.enter(0, 2)  # the one slot
        assert not await gate.enter(0, 2)  # no wait allowed: refused at once

        async def waiter(name: str, wait: float) -> None:
            admitted = await gate.enter(wait, 2)
            log.append(f"{name}:{'in' if admitted else 'refused'}")
            if admitted:
                gate.leave()

        first = asyncio.create_task(waiter("a", 5))
        second = asyncio.create_task(waiter("b", 5))
        await asyncio.sleep(0.01)
        assert len(gate.waiters) == 2
        assert not await gate.enter(5, 2)  # the queue is full: refused at once
        late = asyncio.create_task(waiter("late", 0.01))
        await asyncio.sleep(0.05)  # "late" could not even queue
        gate.leave()  # hands the slot to "a", who hands it to "b"
        await asyncio.gather(first, second, late)
        assert gate.inflight == 0 and not gate.waiters
        timed_out = Gate(1)
        assert await timed_out.enter(0, 1)
        assert not await timed_out.enter(0.01, 1)  # waited its bound, refused
        assert timed_out.waiters == [] and timed_out.inflight == 1
        return log

    assert asyncio.run(scenario()) == ["late:refused", "a:in", "b:in"]


def test_a_standing_queue_gives_a_newcomer_the_short_wait_and_a_burst_the_whole_one():
    """CoDel's rule: once every request leaving the queue for STANDING_SECONDS had waited
    longer than the standing wait, a request that joins it may wait only the standing
    wait; once the queue has emptied, the first to join it again gets the whole wait."""

    async def scenario() -> tuple[float, bool, bool]:
        loop = asyncio.get_running_loop()
        gate = Gate(1)
        assert await gate.enter(5, 10, 0.05)  # the one slot
        first = asyncio.create_task(gate.enter(5, 10, 0.05))  # joins an empty queue: 5 s
        second = asyncio.create_task(gate.enter(5, 10, 0.05))
        await asyncio.sleep(0.3)
        gate.leave()  # "first" leaves the queue after 300 ms
        assert await first
        await asyncio.sleep(0.15)  # nobody left sooner for 150 ms: the queue stands
        started = loop.time()
        newcomer = await gate.enter(5, 10, 0.05)
        waited = loop.time() - started
        second_still_waits = not second.done()
        gate.leave()  # the slot goes to "second"; the queue is empty
        assert await second
        burst = asyncio.create_task(gate.enter(5, 10, 0.05))  # joins an empty queue again
        await asyncio.sleep(0.3)
        burst_still_waits = not burst.done()
        gate.leave()
        assert await burst
        gate.leave()
        assert gate.inflight == 0 and not gate.waiters
        return waited, newcomer or not second_still_waits, burst_still_waits

    waited, newcomer_or_second_gone, burst_still_waits = asyncio.run(scenario())
    assert not newcomer_or_second_gone  # refused, while "second" went on waiting
    assert 0.04 <= waited < 1, waited  # after the standing wait, not the whole 5 s
    assert burst_still_waits  # 300 ms in, past the standing wait: it had the whole wait


def test_a_queue_never_empty_whose_requests_leave_soon_is_not_standing():
    """Near capacity a queue can hold someone all the time while each request waits a
    few milliseconds: that is not a standing queue, and a newcomer gets the whole wait
    (with "not empty for STANDING_SECONDS" as the rule, it was refused after 50 ms)."""

    async def scenario() -> bool:
        gate = Gate(1)
        assert await gate.enter(5, 10, 0.05)
        waiting = asyncio.create_task(gate.enter(5, 10, 0.05))
        for _ in range(25):  # 250 ms in all, the queue never empty
            await asyncio.sleep(0.01)
            following = asyncio.create_task(gate.enter(5, 10, 0.05))
            await asyncio.sleep(0)  # it has joined the queue behind "waiting"
            gate.leave()  # "waiting" leaves after about 10 ms and takes the slot
            assert await waiting
            waiting = following
        newcomer = asyncio.create_task(gate.enter(5, 10, 0.05))
        await asyncio.sleep(0.2)
        newcomer_still_waits = not newcomer.done()
        for _ in range(3):
            gate.leave()
        assert await waiting and await newcomer
        assert gate.inflight == 0 and not gate.waiters
        return newcomer_still_waits

    assert asyncio.run(scenario())
