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
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ether_site.loadshed import LoopLag, refuse_raw, sheddable
from tasks.models import Step
from tests.helpers import holding_task_lock
from tests.servers import Server, daphne
from tests.wire import exchange, parse_answers, request


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


def test_at_the_ceiling_it_refuses_only_while_the_requests_in_flight_stand():
    """A ceiling of 2, the loop never behind: two requests in flight refuse nothing until
    neither has been answered within the standing wait for STANDING_SECONDS; one answered
    quickly makes the queue move again, and below the ceiling nothing is refused."""
    from api.admission import STANDING_SECONDS

    lag = LoopLag(0, ceiling=2)
    lag.standing_wait = 0.05
    first, second = lag.admitted(), lag.admitted()
    seen = [lag.shedding()]
    time.sleep(STANDING_SECONDS * 1.5)
    seen.append(lag.refuse())  # standing: refused, and counted
    third = lag.admitted()
    lag.answered(time.monotonic())  # one answered at once: the queue moves
    seen.append(lag.shedding())
    time.sleep(STANDING_SECONDS * 1.5)
    seen.append(lag.shedding())
    lag.answered(first)  # after a long wait: below the ceiling all the same
    seen.append(lag.shedding())
    lag.answered(second)
    del third
    assert seen == [False, True, False, True, False]
    assert (lag.inflight, lag.refused) == (0, 1)


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


def flood(server: Server, world: Any, task: Any, seconds: float) -> tuple[list[Answer], str]:
    """24 threads posting steps to ``task`` for ``seconds``, each on its own keep-alive
    connection, as fast as answers come; returns every answer and the run's id."""
    auth = {"Authorization": f"Bearer {world.key}", "Content-Type": "application/json"}
    run_id = server.claimed_run(world, task)
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
        after = server.in_flight()

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
        after = server.in_flight()
        output = server.output()

    assert "the event loop is" in output and "ms behind" in output, output[-2000:]
    statuses = [status for status, _, _ in answers]
    assert len(statuses) > 100 and set(statuses) == {201}, (len(statuses), set(statuses))
    assert Step.objects.filter(run__public_id=run_id).count() == len(statuses)
    assert after == 0


# Refusing as the bytes arrive (ether_site.loadshed.refuse_raw, serve.EtherHTTPChannel).


def test_whole_sheddable_requests_are_answered_with_our_problem_and_nothing_else_is_read():
    steps = request() + request(path="/api/tasks?status=live", method="GET") + request()
    taken, answers, close = refuse_raw(steps + b"POST /api/harness/tasks/t/steps HTTP/1.1\r\n")

    assert (taken, len(answers), close) == (len(steps), 3, False)
    parsed = parse_answers(b"".join(answers))
    for status, fields, body in parsed:
        assert status == 503
        assert fields["content-type"] == "application/problem+json"
        assert (fields["retry-after"], fields["cache-control"]) == ("1", "no-store")
        problem = json.loads(body)
        assert (problem["status"], problem["code"]) == (503, "overloaded")
    # The GET is told of requests, the steps of writes, as the other refusals do.
    assert [("writes" in json.loads(b)["detail"]) for _, _, b in parsed] == [True, False, True]


@pytest.mark.parametrize(
    "first",
    [
        request(path="/api/realtime"),  # a stream
        request(path="/api/harness/claim-next"),
        request(path="/healthz", method="GET"),
        request(path="/tasks/task_1", method="GET"),  # a page
        request(method="HEAD", path="/api/tasks"),  # its answer has no body
        request(version="HTTP/1.0"),
        request(fields=("Transfer-Encoding: chunked",)),
        request(fields=("Expect: 100-continue",)),
        request(fields=("Upgrade: websocket",)),
        request(fields=("Content-Length: 19",)),  # a second one: Twisted's to refuse
        request().replace(b"Content-Length:", b"Content-Length :"),  # malformed: 400 is Twisted's
        request(fields=("X-Folded: a", " b")),  # a field folded over two lines
        request(fields=("X-Nul: a\x00b",)),
        b"\r\n" + request(),  # the blank line some clients send: Twisted skips it
    ],
)
def test_anything_it_is_not_sure_of_is_left_to_twisted_with_everything_after_it(first):
    assert refuse_raw(first + request()) == (0, [], False)
    # ...and after whole refusals it stops there.
    taken, answers, _ = refuse_raw(request() + first + request())
    assert (taken, len(answers)) == (len(request()), 1)


class _AnyRefusal:
    def __eq__(self, other: object) -> bool:
        return isinstance(other, bytes) and other.startswith(b"HTTP/1.1 503 ")


ANY_REFUSAL = _AnyRefusal()


@pytest.mark.parametrize("cut", [40, len(request()) - 1])
def test_a_request_not_yet_whole_is_left_for_the_rest_of_it(cut):
    assert refuse_raw(request()[:cut]) == (0, [], False)
    assert refuse_raw(request() + request()[:cut])[:2] == (len(request()), [ANY_REFUSAL])


def test_connection_close_ends_what_is_read():
    closing = request(fields=("Connection: close",))
    assert refuse_raw(request() + closing + request()) == (
        len(request()) + len(closing),
        [ANY_REFUSAL, ANY_REFUSAL],
        True,
    )


@given(
    st.lists(
        st.sampled_from(["step", "list", "stream", "health", "chunked"]), min_size=1, max_size=6
    ),
    st.data(),
)
def test_what_it_takes_always_ends_where_a_request_ends(kinds, data):
    """Any run of requests, cut anywhere: it takes exactly the whole sheddable requests
    before the first one it must leave, and never part of one."""
    made = {
        # A body holding what looks like the end of a head and another request.
        "step": request(body=b'{"a": 1}\r\n\r\nPOST /api/tasks HTTP/1.1\r\n\r\n'),
        "list": request(method="GET", path="/v1/harnesses"),
        "stream": request(method="GET", path="/api/tasks/t/events"),
        "health": request(method="GET", path="/readyz"),
        "chunked": request(fields=("Transfer-Encoding: chunked",)),
    }
    stream = b"".join(made[k] for k in kinds)
    cut = data.draw(st.integers(min_value=0, max_value=len(stream)))
    taken, answers, close = refuse_raw(stream[:cut])

    ends, expected = 0, 0
    for kind in kinds:
        if kind not in ("step", "list") or ends + len(made[kind]) > cut:
            break
        ends += len(made[kind])
        expected += 1
    assert (taken, len(answers), close) == (ends, expected, False)


@pytest.mark.django_db(transaction=True)
def test_past_the_ceiling_requests_are_refused_as_their_bytes_arrive(world, tmp_path):
    """With a ceiling of one request in flight (and no lag limit: the loop is never
    "behind"), one step waits on its task's lock. Another connection sends two steps and a
    health check at once: the steps are answered 503 from their bytes (no ``Server``
    field: neither Twisted nor daphne made a request of them), the health check, which is
    never refused, by the application. When the lock goes, the waiting step is stored, and
    only it."""
    task = world.task()
    env = {
        "ETHER_SHED_MAX_INFLIGHT": "1",
        "ETHER_RATE_HARNESS": "off",
        "ETHER_DB_LOCK_TIMEOUT": "30",
    }
    with daphne(tmp_path, **env) as server:
        steps = f"/api/harness/tasks/{task.public_id}/steps"
        run_id = server.claimed_run(world, task)
        step = {"run_id": run_id, "phase": "coding_agent", "user_message": "wait"}
        waited: list[tuple[int, Any]] = []
        waiter = threading.Thread(
            target=lambda: waited.append(server.call("POST", steps, world.key, step))
        )
        with holding_task_lock(task):
            waiter.start()
            server.wait_in_flight(lambda n: n >= 1, "the step never waited")
            time.sleep(0.3)  # unanswered for longer than STANDING_SECONDS: the queue stands

            body = json.dumps({**step, "user_message": "refused"}).encode()
            post = request(path=steps, body=body, fields=(f"Authorization: Bearer {world.key}",))
            health = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
            answers = exchange(server.port, post + post + health)
        waiter.join(30)
        after = server.in_flight()

    assert [status for status, _, _ in answers] == [503, 503, 200]
    for _, fields, body in answers[:2]:
        assert "server" not in fields
        assert (fields["retry-after"], json.loads(body)["code"]) == ("1", "overloaded")
    assert answers[2][1]["server"] == "daphne"
    assert [status for status, _ in waited] == [201]
    assert list(Step.objects.filter(task=task).values_list("user_message", flat=True)) == ["wait"]
    assert after == 0
