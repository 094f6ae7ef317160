"""Past what the event loop can read, API requests are refused as they are read
(ether_site.loadshed): the monitor on a real event loop, which paths it may refuse, and a
real daphne process flooded by real threads, whose refusals are our problem document,
write nothing, and spare the streams."""

from __future__ import annotations

import asyncio
import http.client
import json
import threading
import time
import urllib.request
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ether_site.loadshed import LoopLag, sheddable
from tasks.models import Step
from tests.servers import Server, daphne


class Recording(LoopLag):
    """The monitor, noting each change of its state."""

    def __init__(self, limit: float) -> None:
        super().__init__(limit)
        self.changes: list[bool] = []

    def _changed(self, behind: bool) -> None:
        self.changes.append(behind)
        super()._changed(behind)


def test_the_monitor_is_behind_while_the_loop_is_late_twice_in_a_row_not_once():
    async def main() -> list[list[bool]]:
        loop = asyncio.get_running_loop()
        lag = Recording(0.1)
        lag.start(loop)
        seen = []
        await asyncio.sleep(0.05)
        time.sleep(0.3)  # one slow callback (a collection, a big frame): one late tick
        await asyncio.sleep(0.1)
        seen.append(list(lag.changes))
        busy = loop.create_future()

        def block(times: int) -> None:  # a loop that stays busy: every tick comes late
            time.sleep(0.3)
            if times:
                loop.call_soon(block, times - 1)
            else:
                busy.set_result(None)

        loop.call_soon(block, 4)
        await busy
        seen.append(list(lag.changes))
        await asyncio.sleep(0.1)  # it caught up
        seen.append(list(lag.changes))
        return seen

    assert asyncio.run(main()) == [[], [True], [True, False]]


def test_behind_it_refuses_only_in_a_crowd_of_requests_in_flight():
    """A loop late on work that is not requests (frames to a thousand watchers) with a
    few requests in flight refuses none of them; with ``crowd`` in flight it refuses."""

    async def main() -> list[bool]:
        loop = asyncio.get_running_loop()
        lag = LoopLag(0.02, crowd=3)
        lag.start(loop)
        busy = loop.create_future()

        def block(times: int) -> None:
            time.sleep(0.1)
            if times:
                loop.call_soon(block, times - 1)
            else:
                busy.set_result(None)

        seen = []
        await asyncio.sleep(0.05)
        loop.call_soon(block, 4)
        await busy
        assert lag.behind
        for inflight in (0, 2, 3, 40):
            lag.inflight = inflight
            seen.append(lag.refuse())
        return seen

    assert asyncio.run(main()) == [False, False, True, True]


def test_a_limit_of_zero_never_starts_the_monitor():
    async def main() -> bool:
        lag = LoopLag(0)
        lag.start(asyncio.get_running_loop())
        time.sleep(0.2)
        await asyncio.sleep(0.05)
        lag.inflight = 100
        return lag.behind or lag.refuse()

    assert asyncio.run(main()) is False


@pytest.mark.parametrize(
    ("path", "refused"),
    [
        ("/api/harness/tasks/task_1/steps", True),
        ("/api/tasks", True),
        ("/v1/harnesses", True),
        ("/api/harness/claim-next", False),  # a long poll: haproxy's stream backend too
        ("/api/tasks/task_1/events", False),  # SSE
        ("/api/activity/events", False),
        ("/api/realtime", False),  # the WebSocket upgrade: a reconnect storm is let in
        ("/healthz", False),
        ("/readyz", False),
        ("/metrics", False),
        ("/tasks/task_1", False),  # pages
    ],
)
def test_what_may_be_refused(path, refused):
    assert sheddable(path) is refused


Answer = tuple[int, dict, bytes]


def in_flight(server: Server) -> float:
    """The served process's ``ether_api_requests_in_flight``, from its /metrics."""
    with urllib.request.urlopen(server.http + "/metrics", timeout=30) as response:
        text = response.read().decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "ether_api_requests_in_flight":
                return sample.value
    raise AssertionError("no ether_api_requests_in_flight in /metrics")


def flood(server: Server, world: Any, task: Any, seconds: float) -> tuple[list[Answer], str]:
    """24 threads posting steps to ``task`` for ``seconds``, each on its own keep-alive
    connection, as fast as answers come; returns every answer and the run's id."""
    auth = {"Authorization": f"Bearer {world.key}", "Content-Type": "application/json"}
    claim = f"/api/harness/tasks/{task.public_id}/claim"
    status, claimed = server.call("POST", claim, world.key, {"app_id": world.app.app_id})
    assert status == 200, claimed
    run_id = claimed["run_id"]
    steps_path = f"/api/harness/tasks/{task.public_id}/steps"
    answers: list[Answer] = []
    stop = time.monotonic() + seconds

    def post() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        step = {"run_id": run_id, "phase": "coding_agent", "user_message": "flood"}
        while time.monotonic() < stop:
            connection.request("POST", steps_path, body=json.dumps(step), headers=auth)
            response = connection.getresponse()
            answers.append((response.status, dict(response.getheaders()), response.read()))
        connection.close()

    threads = [threading.Thread(target=post) for _ in range(24)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers, run_id


@pytest.mark.django_db(transaction=True)
def test_a_flooded_server_refuses_with_our_problem_writes_nothing_and_keeps_streams(
    world, tmp_path
):
    """A 1 ms limit, so that a flood from 24 threads puts the loop behind on any machine,
    and a crowd of 4: some steps are refused, each with the 503 problem and Retry-After;
    the steps stored are exactly the ones answered 201; an SSE stream opened during the
    flood is served; and afterwards nothing is counted in flight."""
    task = world.task()
    env = {"ETHER_SHED_LAG_MS": "1", "ETHER_SHED_MIN_INFLIGHT": "4", "ETHER_RATE_HARNESS": "off"}
    with daphne(tmp_path, **env) as server:
        stream_seen: list[tuple[int, str]] = []

        def watch() -> None:
            time.sleep(1)
            stream = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
            stream.request(
                "GET",
                f"/api/tasks/{task.public_id}/events",
                headers={"Authorization": f"Bearer {world.token}"},
            )
            sse = stream.getresponse()
            stream_seen.append((sse.status, sse.getheader("Content-Type", "").split(";")[0]))
            stream.close()

        watcher = threading.Thread(target=watch)
        watcher.start()
        answers, run_id = flood(server, world, task, 4)
        watcher.join()
        after = in_flight(server)

    statuses = [status for status, _, _ in answers]
    refused = [(headers, body) for status, headers, body in answers if status == 503]
    assert set(statuses) <= {201, 503}, sorted(set(statuses))
    assert refused, f"nothing was refused in {len(answers)} steps"
    for headers, body in refused:
        assert headers["Content-Type"] == "application/problem+json"
        assert headers["Retry-After"] == "1"
        assert headers["Cache-Control"] == "no-store"
        problem = json.loads(body)
        assert (problem["status"], problem["code"]) == (503, "overloaded")
    assert Step.objects.filter(run__public_id=run_id).count() == statuses.count(201)
    assert stream_seen == [(200, "text/event-stream")]
    assert after == 0


@pytest.mark.django_db(transaction=True)
def test_a_loop_behind_with_fewer_requests_in_flight_than_the_crowd_refuses_none(world, tmp_path):
    """The same flood and 1 ms limit, with a crowd larger than the 24 requests that can be
    in flight: the loop is behind as before, and every step is taken."""
    task = world.task()
    env = {"ETHER_SHED_LAG_MS": "1", "ETHER_SHED_MIN_INFLIGHT": "25", "ETHER_RATE_HARNESS": "off"}
    with daphne(tmp_path, **env) as server:
        answers, run_id = flood(server, world, task, 3)
        after = in_flight(server)
        output = server.output()

    assert "the event loop is" in output and "ms behind" in output, output[-2000:]
    statuses = [status for status, _, _ in answers]
    assert len(statuses) > 100 and set(statuses) == {201}, (len(statuses), set(statuses))
    assert Step.objects.filter(run__public_id=run_id).count() == len(statuses)
    assert after == 0
