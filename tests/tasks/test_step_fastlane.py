"""The step fast lane answers a plain step exactly as the full path would, and hands
everything else to it (ether_site/fastlane.py, tasks/services/steps_direct.py, issue 18).

Requests go through the real ASGI stack: ``StepFastLane`` in front of Django's handler,
the lane's write in its own thread on the test database. A recorder between the two
shows which requests the lane left to Django; every case is also sent to Django alone
(the full path), and the answers and stored rows are compared.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from asgiref.sync import async_to_sync
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from api.asgi import ProblemASGIHandler
from api.models import IdempotencyRecord
from ether_site.fastlane import StepFastLane
from tasks.models import Event, Run, Step, Task
from tasks.services.steps_direct import plain_step
from tests.helpers import (
    asgi_http,
    holding_task_lock,
    raw_connection,
    room_in_rate_window,
    row_statements,
)

pytestmark = pytest.mark.django_db(transaction=True)


class Recorder:
    """Django's handler, counting the requests that reach it."""

    def __init__(self) -> None:
        self.app = ProblemASGIHandler()
        self.calls = 0

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        self.calls += 1
        await self.app(scope, receive, send)


@pytest.fixture(scope="module")
def stack() -> tuple[StepFastLane, Recorder]:
    django = Recorder()
    return StepFastLane(django), django


async def _post(app: Any, path: str, body: bytes, headers: dict[str, str]) -> tuple:
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    status, found, content = await asgi_http(app, "POST", path, body=body, headers=raw, timeout=60)
    named = {k.decode().lower(): v.decode() for k, v in found}
    return status, named, json.loads(content or b"null")


def post(app: Any, task_id: str, key: str, data: Any, **headers: str) -> tuple:
    body = data if isinstance(data, bytes) else json.dumps(data).encode()
    sent = {
        "Host": "127.0.0.1",
        "Authorization": f"Bearer {key}",
        "Content-Type": "application/json",
        "Content-Length": str(len(body)),
        **headers,
    }
    return async_to_sync(_post)(app, f"/api/harness/tasks/{task_id}/steps", body, sent)


def live_task(world: Any) -> tuple[Task, str]:
    task = world.task()
    response = world.harness().claim(task.public_id)
    assert response.status_code == 200, response.content
    return task, response.json()["run_id"]


def both(world: Any, stack: tuple, case: Any) -> tuple[tuple, tuple, int]:
    """``case(task, run_id) -> (key, body, headers)`` on two fresh live tasks: through the
    lane and through Django alone. Returns both answers and how many of the lane's
    requests reached Django."""
    lane, django = stack
    answers = []
    before = django.calls
    for app in (lane, ProblemASGIHandler()):
        task, run_id = live_task(world)
        key, body, headers = case(task, run_id)
        answers.append(post(app, task.public_id, key, body, **headers))
    return answers[0], answers[1], django.calls - before


def plain(run_id: str, **more: Any) -> dict[str, Any]:
    return {"run_id": run_id, "phase": "coding_agent", "user_message": "Ran the tests", **more}


def stored(task: Task) -> tuple[list, list]:
    """The task's steps, and the events of its topic from its first step on."""
    steps = list(Step.objects.filter(task=task).values("phase", "user_message", "seq"))
    first = min(step["seq"] for step in steps)
    events = Event.objects.filter(topic=f"tasks/{task.public_id}", seq__gte=first)
    return steps, list(events.order_by("seq").values("seq", "name", "payload"))


def test_a_plain_step_is_answered_and_stored_as_the_full_path_does(world, stack):
    lane, django = stack
    results = []
    for app in (lane, ProblemASGIHandler()):
        task, run_id = live_task(world)
        before = django.calls
        answer = post(app, task.public_id, world.key, plain(run_id), **{"X-Request-ID": "r-1"})
        results.append((task, run_id, answer, django.calls - before))
    (lane_task, lane_run, fast, reached), (full_task, full_run, full, _) = results
    assert reached == 0  # the lane answered it
    assert fast[0] == full[0] == 201
    assert fast[1].pop("content-length") and full[1].pop("content-length")
    assert fast[1] == full[1]  # every header, the request id included
    assert fast[1]["x-request-id"] == "r-1"
    assert set(fast[2]) == set(full[2]) == {"step_id", "seq"}
    fast_steps, fast_events = stored(lane_task)
    full_steps, full_events = stored(full_task)
    assert (
        fast_steps
        == full_steps
        == [{"phase": "coding_agent", "user_message": "Ran the tests", "seq": fast[2]["seq"]}]
    )
    step = Step.objects.get(task=lane_task)
    assert step.public_id == fast[2]["step_id"]
    assert step.run == Run.objects.get(public_id=lane_run)

    def same(events: list, task: Task, run_id: str, step_id: str) -> list:
        text = json.dumps(events).replace(task.public_id, "T").replace(run_id, "R")
        return json.loads(text.replace(step_id, "S"))

    assert same(fast_events, lane_task, lane_run, fast[2]["step_id"]) == same(
        full_events, full_task, full_run, full[2]["step_id"]
    )
    assert [e["name"] for e in fast_events] == ["os.harness.step", "task.timeline"]
    assert [e["seq"] for e in fast_events] == [fast[2]["seq"], fast[2]["seq"] + 1]


def test_an_idempotency_key_is_stored_and_replayed_as_the_full_path_does(world, stack):
    lane, django = stack
    task, run_id = live_task(world)
    key = {"Idempotency-Key": "step-1"}
    before = django.calls
    first = post(lane, task.public_id, world.key, plain(run_id), **key)
    assert (first[0], django.calls - before) == (201, 0)
    record = IdempotencyRecord.objects.get(key="step-1")
    assert (record.state, record.status_code, record.body) == ("done", 201, first[2])
    again = post(lane, task.public_id, world.key, plain(run_id), **key)
    assert again[0] == 201 and again[2] == first[2]
    assert again[1]["idempotent-replayed"] == "true"  # Django replayed the stored answer
    other = post(lane, task.public_id, world.key, plain(run_id, user_message="other"), **key)
    assert other[0] == 422 and other[2]["code"] == "idempotency_key_reused"
    assert Step.objects.filter(task=task).count() == 1


def test_a_repeated_client_step_id_replays_the_first_step(world, stack):
    lane, _django = stack
    task, run_id = live_task(world)
    body = plain(run_id, client_step_id="c-1")
    first = post(lane, task.public_id, world.key, body)
    again = post(lane, task.public_id, world.key, body)
    assert first[0] == again[0] == 201
    assert again[2] == first[2] and again[1]["idempotent-replayed"] == "true"
    assert Step.objects.filter(task=task).count() == 1


def _expire(task: Task) -> None:
    Run.objects.filter(task=task).update(lease_expires_at=timezone.now() - timedelta(seconds=1))


CASES = {
    # name: case(world, task, run_id) -> (key, body, headers)
    "stale epoch": lambda w, t, r: (w.key, plain(r, lease_epoch=7), {}),
    "unknown run": lambda w, t, r: (w.key, plain("run_" + "0" * 32), {}),
    "another app's run": lambda w, t, r: (w.rival_key, plain(r), {}),
    "other org's key": lambda w, t, r: (w.outsider_key, plain(r), {}),
    "unknown key": lambda w, t, r: ("eth_app_" + "x" * 40, plain(r), {}),
    "no credential": lambda w, t, r: ("", plain(r), {"Authorization": ""}),
    "personal token": lambda w, t, r: (w.token, plain(r), {}),
    "expired lease": lambda w, t, r: (_expire(t), (w.key, plain(r), {}))[1],
    "cancelled task": lambda w, t, r: (
        Task.objects.filter(pk=t.pk).update(status="cancelled"),
        (w.key, plain(r), {}),
    )[1],
    "trimmed message": lambda w, t, r: (w.key, plain(r, user_message="  padded  "), {}),
    "unknown field": lambda w, t, r: (w.key, plain(r, colour="red"), {}),
    "null epoch": lambda w, t, r: (w.key, plain(r, lease_epoch=None), {}),
    "too long": lambda w, t, r: (w.key, plain(r, user_message="x" * 4001), {}),
    "not json": lambda w, t, r: (w.key, b"{nope", {}),
    "a list": lambda w, t, r: (w.key, [plain(r)], {}),
    "text/plain": lambda w, t, r: (w.key, plain(r), {"Content-Type": "text/plain"}),
    "foreign host": lambda w, t, r: (w.key, plain(r), {"Host": "evil.example"}),
    "blank idempotency key": lambda w, t, r: (w.key, plain(r), {"Idempotency-Key": " "}),
}


@pytest.mark.parametrize("name", list(CASES))
def test_anything_but_a_plain_step_is_answered_by_the_full_path(world, stack, name):
    case = CASES[name]
    fast, full, reached = both(world, stack, lambda t, r: case(world, t, r))
    assert reached == 1, "the lane must hand this request to Django"
    assert fast[0] == full[0]
    if isinstance(full[2], dict) and "code" in full[2]:
        assert fast[2]["code"] == full[2]["code"]
    if name == "trimmed message":
        assert fast[0] == 201
        assert Step.objects.get(public_id=fast[2]["step_id"]).user_message == "padded"
    else:
        assert fast[0] >= 400


def test_a_paused_task_is_answered_by_the_full_path(world, stack):
    lane, django = stack
    task, run_id = live_task(world)
    Task.objects.filter(pk=task.pk).update(status="paused")
    before = django.calls
    answer = post(lane, task.public_id, world.key, plain(run_id))
    assert django.calls - before == 1
    assert answer[0] == 201  # steps may narrate while a question waits
    assert Step.objects.filter(task=task).count() == 1


def test_a_throttled_harness_gets_the_full_paths_429(world, stack):
    lane, _django = stack
    room_in_rate_window(60, need=10)
    task, run_id = live_task(world)
    # The claim counted once: two steps fit in a limit of 3, the third is over it.
    with override_settings(ETHER_RATE_LIMITS={"harness": (3, 60)}):
        answers = [post(lane, task.public_id, world.key, plain(run_id))[0] for _ in range(3)]
    assert answers == [201, 201, 429]
    assert Step.objects.filter(task=task).count() == 2


def test_a_step_the_lane_hands_on_is_counted_once(world, stack):
    """A refused step goes through the lane and then the full path: one count, not two."""
    lane, _django = stack
    room_in_rate_window(60, need=10)
    task, run_id = live_task(world)
    # The claim counted once; with a limit of 4, three refused steps (a stale epoch) fit.
    with override_settings(ETHER_RATE_LIMITS={"harness": (4, 60)}):
        answers = [
            post(lane, task.public_id, world.key, plain(run_id, lease_epoch=9))[0] for _ in range(4)
        ]
    assert answers == [409, 409, 409, 429]


def test_the_lane_can_be_turned_off(world, stack):
    lane, django = stack
    task, run_id = live_task(world)
    before = django.calls
    with override_settings(ETHER_STEP_FAST_LANE=False):
        assert post(lane, task.public_id, world.key, plain(run_id))[0] == 201
    assert django.calls - before == 1


def test_lane_and_full_path_writers_on_one_task_keep_seqs_gapless(world, stack):
    """Real threads, each through the whole stack: plain steps take the lane, padded ones
    the full path; both lock the task first, so every step is stored with its events and
    the task's seqs have no gap and no repeat."""
    lane, _django = stack
    task, run_id = live_task(world)
    start = threading.Barrier(12)
    statuses: list[int] = []

    def writer(i: int) -> None:
        start.wait()
        for j in range(5):
            message = f"step {i}.{j}" if i % 2 else f" padded {i}.{j} "
            statuses.append(
                post(lane, task.public_id, world.key, plain(run_id, **{"user_message": message}))[0]
            )

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(12)]
    # A burst of a test on a loaded machine is not an overload to refuse (as tests/servers.py).
    with override_settings(ETHER_ADMISSION_WAIT_MS=20000, ETHER_ADMISSION_STANDING_WAIT_MS=20000):
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
    assert statuses == [201] * 60
    topic = Event.objects.filter(topic=f"tasks/{task.public_id}")
    seqs = list(topic.order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, len(seqs) + 1))
    steps = Step.objects.filter(task=task)
    assert steps.count() == 60
    events = topic.filter(name="os.harness.step")
    assert sorted(s.seq for s in steps) == sorted(e.seq for e in events)


def test_a_batch_stores_the_plain_steps_and_leaves_out_the_rest(world):
    """Several steps written together (the lane's writer under load): each gets the
    answer it would get alone, and a step left out has written nothing."""
    from tasks.services.steps_direct import Idempotency, Pending, step_record_batch

    first, first_run = live_task(world)
    second, second_run = live_task(world)
    app = world.app

    def pending(task: Task, run_id: str, key: str | None = None, **more: Any) -> Pending:
        write = plain_step(task.public_id, plain(run_id, **more))
        assert write is not None
        idem = Idempotency(scope=app.idempotency_scope(), key=key, fingerprint="f") if key else None
        return Pending(app=app, write=write, idempotency=idem)

    answers = step_record_batch(
        [
            pending(first, first_run, key="k1"),
            pending(first, first_run, lease_epoch=5),  # stale epoch: refused
            pending(second, second_run, key="k1"),  # the same key again: a retry
            pending(second, second_run, client_step_id="c"),
            pending(second, second_run, client_step_id="c"),  # a replay of the one before
        ]
    )
    assert [a is not None for a in answers] == [True, False, False, True, False]
    assert Step.objects.filter(task=first).count() == 1
    assert Step.objects.filter(task=second).count() == 1
    assert IdempotencyRecord.objects.filter(key="k1").count() == 1
    for task, answer in ((first, answers[0]), (second, answers[3])):
        step = Step.objects.get(task=task)
        assert (step.public_id, step.seq) == (answer["step_id"], answer["seq"])
        names = Event.objects.filter(topic=f"tasks/{task.public_id}", seq__gte=step.seq)
        assert list(names.order_by("seq").values_list("name", flat=True)) == [
            "os.harness.step",
            "task.timeline",
        ]


def test_a_lane_step_is_within_the_step_query_budget(world):
    """Issue 18's budget for a step is 6 statements (tests/tasks/test_query_counts.py holds
    the full path to it, at 5); the lane's is 4 on SQLite, and on Postgres a lone step is
    one statement, its own transaction (steps_direct._step_in_one_statement)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tasks.services.steps_direct import step_record_direct

    task, run_id = live_task(world)
    write = plain_step(task.public_id, plain(run_id))
    with CaptureQueriesContext(connection) as captured:
        assert step_record_direct(app=world.app, write=write, idempotency=None) is not None
    # Counted as tests/tasks/test_query_counts.py counts: statements that read or write
    # rows (not BEGIN, COMMIT or savepoints). SQLite: the guard, the seqs, the events, the
    # step. Postgres: all of them in one, outside any transaction of Django's.
    statements = row_statements(captured)
    if connection.vendor == "postgresql":
        assert len(statements) == 1, statements
        assert [q["sql"] for q in captured.captured_queries] == statements  # no BEGIN
    else:
        assert len(statements) == 4, statements
    step = Step.objects.get(task=task)
    assert (step.phase, step.user_message) == ("coding_agent", "Ran the tests")
    events = Event.objects.filter(topic=f"tasks/{task.public_id}", seq__gte=step.seq)
    assert [(e.seq, e.name, e.payload["step_id"]) for e in events.order_by("seq")] == [
        (step.seq, "os.harness.step", step.public_id),
        (step.seq + 1, "task.timeline", step.public_id),
    ]
    if connection.vendor == "postgresql":  # one time for the whole statement
        assert events.get(name="task.timeline").created_at == step.created_at


def test_a_batch_costs_statements_per_task_not_per_step(world):
    """Ten steps on one task and one or two on each of four others, written together: on
    SQLite the batch is four statements whatever the number of tasks (every guard in one
    read, every seq in one update, the events, the steps); on Postgres the guard (one
    statement taking both row locks) and the seqs are paid per task (row locks in task
    order) and the inserts once. Every step still gets its own consecutive pair of
    events, in the order the steps came."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tasks.services.steps_direct import Pending, step_record_batch

    busy, busy_run = live_task(world)
    others = [live_task(world) for _ in range(4)]
    batch = [(busy, busy_run, f"step {n}") for n in range(10)]
    for n, (task, run_id) in enumerate(others):
        batch.insert(2 * n + 1, (task, run_id, f"quiet {n}"))
    batch.append((*others[0], "quiet again"))
    pending = []
    for task, run_id, message in batch:
        write = plain_step(task.public_id, plain(run_id, user_message=message))
        assert write is not None
        pending.append(Pending(app=world.app, write=write, idempotency=None))
    with CaptureQueriesContext(connection) as captured:
        answers = step_record_batch(pending)
    statements = row_statements(captured)
    tasks = 1 + len(others)
    expected = 4 if connection.vendor == "sqlite" else tasks * (1 + 1) + 2
    assert len(statements) == expected, statements
    assert all(answer is not None for answer in answers)
    for task in (busy, *(task for task, _ in others)):
        sent = [m for t, _, m in batch if t == task]
        steps = Step.objects.filter(task=task).order_by("seq")
        assert [s.user_message for s in steps] == sent
        events = Event.objects.filter(topic=f"tasks/{task.public_id}", seq__gte=steps[0].seq)
        names = list(events.order_by("seq").values_list("seq", "name", "payload"))
        assert [seq for seq, _, _ in names] == list(
            range(steps[0].seq, steps[0].seq + 2 * len(sent))
        )
        assert [name for _, name, _ in names] == ["os.harness.step", "task.timeline"] * len(sent)
        for step, (seq, _, payload) in zip(steps, names[::2], strict=True):
            assert (step.seq, payload["step_id"]) == (seq, step.public_id)
        by_id = {a["step_id"]: a["seq"] for a in answers}
        assert {s.public_id: s.seq for s in steps}.items() <= by_id.items()


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's compound SELECT limit")
def test_a_batch_across_more_tasks_than_one_select_may_join_reads_its_guards_in_parts(world):
    """The lane's writer takes up to 256 steps a batch, and SQLite's guard for the batch is
    one UNION ALL, a SELECT per task; SQLite refuses more terms than its compound-select
    limit (500 by default). Here the connection's own limit is lowered to 3: seven tasks
    are read in three statements, and each step gets the answer it would get alone, the
    refused one (a stale lease epoch) included."""
    import sqlite3

    from django.test.utils import CaptureQueriesContext

    from tasks.services.steps_direct import Pending, step_record_batch

    tasks = [live_task(world) for _ in range(7)]
    pending = []
    for n, (task, run_id) in enumerate(tasks):
        more = {"lease_epoch": 99} if n == 4 else {}
        write = plain_step(task.public_id, plain(run_id, user_message=f"step {n}", **more))
        assert write is not None
        pending.append(Pending(app=world.app, write=write, idempotency=None))
    connection.ensure_connection()
    raw = connection.connection
    limit = raw.getlimit(sqlite3.SQLITE_LIMIT_COMPOUND_SELECT)
    raw.setlimit(sqlite3.SQLITE_LIMIT_COMPOUND_SELECT, 3)
    try:
        with CaptureQueriesContext(connection) as captured:
            answers = step_record_batch(pending)
    finally:
        raw.setlimit(sqlite3.SQLITE_LIMIT_COMPOUND_SELECT, limit)
    guards = [q for q in row_statements(captured) if "json_group_array" in q]
    assert len(guards) == 3, guards
    assert [answer is not None for answer in answers] == [n != 4 for n in range(7)]
    for n, (task, _) in enumerate(tasks):
        steps = list(Step.objects.filter(task=task).values_list("user_message", flat=True))
        assert steps == ([] if n == 4 else [f"step {n}"])


def _blocked_guards() -> int:
    """Backends of this database waiting on a lock in the lane's Postgres guard."""
    with raw_connection() as probe:
        row = probe.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND query LIKE '%%SELECT t.id%%FOR UPDATE OF t, r%%'"
        ).fetchone()
    return int(row[0]) if row else 0


@contextlib.contextmanager
def lane_waiting_on(world: Any, write: Any, table: str, pk: int) -> Iterator[list[list[Any]]]:
    """Another transaction holds the row ``pk`` of ``table`` (``FOR UPDATE``) and the lane
    writes ``write`` in a thread of its own. Inside, the lane's guard waits on that lock;
    on leaving, the holder lets go, the lane finishes and its answers are in the list."""
    from tasks.services.steps_direct import Pending, step_record_batch

    answers: list[list[Any]] = []

    def lane() -> None:
        try:
            answers.append(
                step_record_batch([Pending(app=world.app, write=write, idempotency=None)])
            )
        finally:
            connection.close()

    holder = raw_connection()
    thread = threading.Thread(target=lane)
    try:
        holder.execute(f"SELECT id FROM {table} WHERE id = %s FOR UPDATE", [pk])
        thread.start()
        deadline = time.monotonic() + 15
        while _blocked_guards() == 0:
            assert time.monotonic() < deadline, "the guard never waited on the row lock"
            time.sleep(0.02)
        yield answers
        holder.rollback()
        thread.join(timeout=30)
    finally:
        holder.close()
    assert not thread.is_alive()


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="row locks; SQLite has one write lock, no order"
)
@pytest.mark.parametrize("held", ["task", "run"])
def test_the_postgres_guard_takes_the_task_lock_before_the_run_lock(world, held):
    """The lane's guard takes both row locks in one statement. It must take them in the
    order every writer does (the task's, then the run's: leases.guard_write), or a guard
    and a full-path write could each hold one and wait for the other. Another transaction
    holds one of the two rows: while the guard waits for the task, the run is free; while
    it waits for the run, it holds the task. Then the step is written once."""
    task, run_id = live_task(world)
    run = Run.objects.get(public_id=run_id)
    write = plain_step(task.public_id, plain(run_id, user_message="in order"))
    assert write is not None
    rows = {"task": (Task._meta.db_table, task.pk), "run": (Run._meta.db_table, run.pk)}
    with lane_waiting_on(world, write, *rows[held]) as answers:
        other_table, other_pk = rows["run" if held == "task" else "task"]
        with raw_connection() as probe:
            lock = f"SELECT id FROM {other_table} WHERE id = %s FOR UPDATE NOWAIT"
            if held == "task":
                probe.execute(lock, [other_pk])  # free: the guard holds nothing yet
            else:
                with pytest.raises(psycopg.errors.LockNotAvailable):
                    probe.execute(lock, [other_pk])  # the guard holds the task
    assert len(answers) == 1 and answers[0][0] is not None, answers
    assert [s.user_message for s in Step.objects.filter(task=task)] == ["in order"]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks")
def test_a_lease_that_expires_while_the_step_waits_for_the_task_lock_refuses_it(world):
    """The guard checks the lease after any wait for the task's row lock, as guard_write
    does: a step sent while its lease had a second left, held up for two seconds by
    another writer of the task, is not written by the lane (``None``: the full path
    answers the refusal), and the lane wrote nothing of it."""
    task, run_id = live_task(world)
    Run.objects.filter(public_id=run_id).update(
        lease_expires_at=timezone.now() + timedelta(seconds=1)
    )
    write = plain_step(task.public_id, plain(run_id, user_message="too late"))
    before = Event.objects.filter(topic=f"tasks/{task.public_id}").count()
    with lane_waiting_on(world, write, Task._meta.db_table, task.pk) as answers:
        time.sleep(2)
    assert answers == [[None]]
    assert not Step.objects.filter(task=task).exists()
    assert Event.objects.filter(topic=f"tasks/{task.public_id}").count() == before


SECURE = {
    "SECURE_PROXY_SSL_HEADER": ("HTTP_X_FORWARDED_PROTO", "https"),
    "SECURE_SSL_REDIRECT": True,
    "SECURE_HSTS_SECONDS": 3600,
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
    "SECURE_HSTS_PRELOAD": True,
}


def test_behind_a_tls_proxy_the_lane_answers_as_django_does(world):
    """Production's settings (DEBUG off): a step the proxy says came over HTTPS is taken by
    the lane with Django's headers, HSTS included; one over plain HTTP, or for a host not
    allowed, is Django's to answer (a redirect, a 400)."""
    lane_task, full_task, third = (live_task(world) for _ in range(3))
    with override_settings(DEBUG=False, **SECURE):
        django = Recorder()  # SecurityMiddleware reads the settings when it is built
        lane = StepFastLane(django)
        https = {"X-Forwarded-Proto": "https", "X-Request-ID": "r-2"}
        answers = []
        for app, (task, run_id) in ((lane, lane_task), (ProblemASGIHandler(), full_task)):
            before = django.calls
            answers.append((post(app, task.public_id, world.key, plain(run_id), **https), before))
        (fast, before), (full, _) = answers
        assert django.calls == before  # the lane took it
        assert fast[0] == full[0] == 201
        assert fast[1].pop("content-length") and full[1].pop("content-length")
        assert fast[1] == full[1]
        assert fast[1]["strict-transport-security"] == "max-age=3600; includeSubDomains; preload"

        task, run_id = third
        before = django.calls
        redirected = post(lane, task.public_id, world.key, plain(run_id))  # plain HTTP
        stranger = post(
            lane, task.public_id, world.key, plain(run_id), Host="evil.example", **https
        )
        assert django.calls - before == 2
        assert redirected[0] == 301
        assert (
            redirected[1]["location"]
            == f"https://127.0.0.1/api/harness/tasks/{task.public_id}/steps"
        )
        assert stranger[0] == 400
        assert not Step.objects.filter(task=task).exists()


def test_steps_joining_a_standing_queue_wait_only_the_standing_wait(world, monkeypatch):
    """The writer held up by another transaction on the task (SQLite's write lock, the
    task's row lock on Postgres): a step joins the queue while it has just been emptied
    and gets the whole wait; steps that join after it has stood longer than
    STANDING_SECONDS get the standing wait, outlast it, and are refused 503 overloaded
    having written nothing. When the writer is free again, the first ones are stored."""
    from api import admission

    monkeypatch.setattr(admission, "STANDING_SECONDS", 1.0)
    lane = StepFastLane(ProblemASGIHandler())  # a writer of its own, its queue empty
    task, run_id = live_task(world)
    headers = {
        "Host": "127.0.0.1",
        "Authorization": f"Bearer {world.key}",
        "Content-Type": "application/json",
    }

    async def send(message: str) -> tuple:
        body = json.dumps(plain(run_id, user_message=message)).encode()
        sent = {**headers, "Content-Length": str(len(body))}
        return await _post(lane, f"/api/harness/tasks/{task.public_id}/steps", body, sent)

    async def scenario(release: threading.Event) -> tuple[list[tuple], list[tuple]]:
        first = [asyncio.create_task(send("first"))]
        await asyncio.sleep(0.05)  # the writer took "first" and waits for the lock
        early = [asyncio.create_task(send(f"early {i}")) for i in range(5)]
        await asyncio.sleep(1.3)  # the queue has stood 1.3 s: past STANDING_SECONDS
        late = [asyncio.create_task(send(f"late {i}")) for i in range(5)]
        await asyncio.sleep(0.3)  # past the late ones' standing wait
        release.set()
        return await asyncio.gather(*first, *early), await asyncio.gather(*late)

    with (
        holding_task_lock(task) as release,
        override_settings(ETHER_ADMISSION_WAIT_MS=20000, ETHER_ADMISSION_STANDING_WAIT_MS=100),
    ):
        taken, refused = async_to_sync(scenario)(release)
    assert [status for status, _h, _b in taken] == [201] * 6
    assert [(s, b["code"], h["retry-after"]) for s, h, b in refused] == [
        (503, "overloaded", "1")
    ] * 5
    messages = set(Step.objects.filter(task=task).values_list("user_message", flat=True))
    assert messages == {"first"} | {f"early {i}" for i in range(5)}
