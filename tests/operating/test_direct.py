"""A plain step read from its connection's bytes (ether_site.direct) against a real
daphne process: answered as Twisted and daphne would answer it, pipelined with other
requests in order, handed to Django when the lane says no, and a client that leaves
while its step waits costs nothing."""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest

from ether_site.direct import plain_step
from tasks.models import Step
from tests.helpers import holding_task_lock
from tests.servers import daphne
from tests.wire import exchange, request

CLOSE = ("Connection: close",)


def step(task: Any, run_id: str, key: str, message: str, *fields: str, query: str = "") -> bytes:
    body = json.dumps({"run_id": run_id, "phase": "coding_agent", "user_message": message})
    path = f"/api/harness/tasks/{task.public_id}/steps{query}"
    return request(path=path, body=body.encode(), fields=(f"Authorization: Bearer {key}", *fields))


def test_only_whole_plain_step_posts_are_read_from_their_bytes():
    assert plain_step(request()) is not None
    assert plain_step(request(path="/api/harness/tasks/task_1/steps?x=1")) is None
    assert plain_step(request(path="/api/harness/tasks/a%2Fb/steps")) is None
    assert plain_step(request(path="/api/harness/tasks/task_1/heartbeat")) is None
    assert plain_step(request(method="PUT")) is None
    assert plain_step(request()[:-1]) is None  # the body is not all here
    assert plain_step(request(fields=("Transfer-Encoding: chunked",))) is None


@pytest.mark.django_db(transaction=True)
def test_a_step_read_from_its_bytes_is_answered_as_through_twisted(world, tmp_path):
    """The same step twice on one server: once read from its bytes, once through
    Twisted and daphne (a query string keeps it off the direct path; the lane ignores
    it). Same status, same fields but the request id and length, the same members in
    the body, both stored, in order."""
    task = world.task()
    with daphne(tmp_path, ETHER_RATE_HARNESS="off") as server:
        run_id = server.claimed_run(world, task)
        direct = exchange(server.port, step(task, run_id, world.key, "one", *CLOSE))
        twisted = exchange(server.port, step(task, run_id, world.key, "two", *CLOSE, query="?a=1"))

    (status, fields, body), (status2, fields2, body2) = direct[0], twisted[0]
    assert (status, status2) == (201, 201)
    assert fields.keys() == fields2.keys()
    varying = {"x-request-id", "content-length"}
    assert {k: v for k, v in fields.items() if k not in varying} == {
        k: v for k, v in fields2.items() if k not in varying
    }
    one, two = json.loads(body), json.loads(body2)
    assert one.keys() == two.keys() == {"step_id", "seq"}
    stored = Step.objects.filter(task=task).order_by("seq")
    assert [(s.user_message, s.public_id, s.seq) for s in stored] == [
        ("one", one["step_id"], one["seq"]),
        ("two", two["step_id"], two["seq"]),
    ]


@pytest.mark.django_db(transaction=True)
def test_pipelined_requests_are_answered_in_order_and_django_answers_what_the_lane_does_not(
    world, tmp_path
):
    """Four requests in one write: a step, a step with a key nobody has (the lane hands it
    to Django: 401 problem), a step sent the long way (a query string), and a health
    check that asks to close. Four answers in that order; the two good steps stored."""
    task = world.task()
    with daphne(tmp_path, ETHER_RATE_HARNESS="off") as server:
        run_id = server.claimed_run(world, task)
        answers = exchange(
            server.port,
            step(task, run_id, world.key, "first")
            + step(task, run_id, "eth_app_nobody", "stranger")
            + step(task, run_id, world.key, "second", query="?via=twisted")
            + request(method="GET", path="/healthz", fields=CLOSE),
        )

    assert [status for status, _, _ in answers] == [201, 401, 201, 200]
    assert answers[1][1]["content-type"] == "application/problem+json"
    assert json.loads(answers[1][2])["status"] == 401
    assert answers[3][1]["connection"] == "close"
    messages = Step.objects.filter(task=task).order_by("seq").values_list("user_message", flat=True)
    assert list(messages) == ["first", "second"]


@pytest.mark.django_db(transaction=True)
def test_a_client_that_leaves_while_its_step_waits_leaves_nothing_in_flight(world, tmp_path):
    """The task's lock is held, so the step waits in the lane; its client closes the
    connection. When the lock goes, the step is stored (the lane had it), nothing is
    left counted in flight, and the server answers the next step."""
    task = world.task()
    with daphne(tmp_path, ETHER_RATE_HARNESS="off", ETHER_DB_LOCK_TIMEOUT="30") as server:
        run_id = server.claimed_run(world, task)
        with (
            holding_task_lock(task),
            socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock,
        ):
            sock.sendall(step(task, run_id, world.key, "left"))
            server.wait_in_flight(lambda n: n >= 1, "the step never waited")
        server.wait_in_flight(lambda n: n == 0, "still counted in flight")
        after = exchange(server.port, step(task, run_id, world.key, "after", *CLOSE))

    assert [status for status, _, _ in after] == [201]
    messages = Step.objects.filter(task=task).order_by("seq").values_list("user_message", flat=True)
    assert list(messages) == ["left", "after"]
