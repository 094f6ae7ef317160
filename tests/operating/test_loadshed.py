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

import pytest

from ether_site.loadshed import LoopLag, sheddable
from tasks.models import Step
from tests.servers import daphne


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


def test_a_limit_of_zero_never_starts_the_monitor():
    async def main() -> bool:
        lag = LoopLag(0)
        lag.start(asyncio.get_running_loop())
        time.sleep(0.2)
        await asyncio.sleep(0.05)
        return lag.behind or lag.refuse("/api/harness/heartbeat")

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


@pytest.mark.django_db(transaction=True)
def test_a_flooded_server_refuses_with_our_problem_writes_nothing_and_keeps_streams(
    world, tmp_path
):
    """A 1 ms limit, so that a flood from 24 threads puts the loop behind on any machine:
    some steps are refused, each with the 503 problem and Retry-After; the steps stored are
    exactly the ones answered 201; an SSE stream opened during the flood is served."""
    task = world.task()
    with daphne(tmp_path, ETHER_SHED_LAG_MS="1", ETHER_RATE_HARNESS="off") as server:
        auth = {"Authorization": f"Bearer {world.key}", "Content-Type": "application/json"}

        def request(method: str, path: str, body: dict | None = None) -> tuple[int, dict, bytes]:
            connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
            try:
                payload = None if body is None else json.dumps(body)
                connection.request(method, path, body=payload, headers=auth)
                response = connection.getresponse()
                return response.status, dict(response.getheaders()), response.read()
            finally:
                connection.close()

        status, _, body = request(
            "POST", f"/api/harness/tasks/{task.public_id}/claim", {"app_id": world.app.app_id}
        )
        assert status == 200, body
        run_id = json.loads(body)["run_id"]
        steps_path = f"/api/harness/tasks/{task.public_id}/steps"
        answers: list[tuple[int, dict, bytes]] = []
        stop = time.monotonic() + 4

        def flood() -> None:
            connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
            step = {"run_id": run_id, "phase": "coding_agent", "user_message": "flood"}
            while time.monotonic() < stop:
                connection.request("POST", steps_path, body=json.dumps(step), headers=auth)
                response = connection.getresponse()
                answers.append((response.status, dict(response.getheaders()), response.read()))

        threads = [threading.Thread(target=flood) for _ in range(24)]
        for thread in threads:
            thread.start()
        time.sleep(1)
        stream = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        stream.request(
            "GET",
            f"/api/tasks/{task.public_id}/events",
            headers={"Authorization": f"Bearer {world.token}"},
        )
        sse = stream.getresponse()
        sse_status, sse_type = sse.status, sse.getheader("Content-Type", "")
        stream.close()
        for thread in threads:
            thread.join()

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
    assert (sse_status, sse_type.split(";")[0]) == (200, "text/event-stream")
