"""A step in a handful of precompiled statements: the write behind the step fast lane.

Why (issue 18, docs/performance.md §8): a step is the harness's most frequent write, and
through the ORM its guard, events and row cost more CPU to *build* (query compilation,
model instances, DRF) than the database spends running them; one process topped out far
below a bare server doing the same insert. This is ``step_record`` for the common case
only, as SQL written once:

- the guard's conditions in its reads: the task in progress, the run this app's live
  run with an unexpired lease (and the epoch, when sent), the app's key unrevoked (one
  read on SQLite, whose transaction holds the write lock; on Postgres the task's row
  lock, then the run's, the order every writer takes them in);
- the step's two events through ``events.record_direct`` (the same seqs, webhooks and
  publishing as every event);
- the step row, and the ``Idempotency-Key`` record with its final answer, in the same
  transaction.

Steps waiting together are written together (``step_record_batch``), at a cost in
statements per task rather than per step on Postgres, and of four statements whatever
the tasks on SQLite (one more per 500 tasks of a batch: SQLite's compound-select limit).
A step alone on Postgres (every step, at the rates watchers notice) is one statement,
its own transaction (``_step_in_one_statement``).

Anything else returns ``None`` having written nothing (its checks are reads), and
the caller takes the full path, ``step_record`` behind the DRF view, which answers it:
every refusal (lease lost, wrong app, revoked key, closed or unknown task), a replayed
``client_step_id`` or ``Idempotency-Key``, a paused or cancelled task. So there is one
place that decides what a refusal says, and this module only ever says yes.
"""

from __future__ import annotations

import json
import re
import sqlite3
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from api import metrics
from api.idempotency import done_record_insert
from api.ids import new_step_id
from api.models import IdempotencyRecord
from tasks import events
from tasks.models import HarnessApp, Run, RunStatus, Step, Task, TaskStatus


@dataclass(frozen=True)
class StepWrite:
    """A step as the harness sent it, already checked to be exactly what ``StepIn``
    would accept unchanged (tasks.fastlane)."""

    task_public_id: str
    run_id: str
    lease_epoch: int | None
    phase: str
    user_message: str
    internal_label: str
    client_step_id: str | None


@dataclass(frozen=True)
class Idempotency:
    scope: str
    key: str
    fingerprint: str


def step_record_direct(
    *, app: HarnessApp, write: StepWrite, idempotency: Idempotency | None
) -> dict[str, Any] | None:
    """Stores the step and returns the answer's body (``StepOut``), or ``None`` having
    written nothing when the full path must answer (see the module)."""
    return step_record_batch([Pending(app=app, write=write, idempotency=idempotency)])[0]


@dataclass(frozen=True)
class Pending:
    app: HarnessApp
    write: StepWrite
    idempotency: Idempotency | None


def step_record_batch(pending: list[Pending]) -> list[dict[str, Any] | None]:
    """Several steps in one transaction, each the answer ``step_record_direct`` would give.

    Under load the lane's writer takes the steps waiting for it together (ether_site/
    fastlane.py), and the batch costs statements per task rather than per step: one
    ``BEGIN`` and ``COMMIT``; one guard for the steps of one run (the transaction holds
    SQLite's write lock, or the task's and run's row locks on Postgres, so its answer
    holds for the batch); one seq allocation per task; one ``INSERT`` for every event and
    one for every step. On SQLite, whose one write lock leaves no lock order to keep,
    every guard is one read and every seq allocation one update. All checks are reads
    made before any write, so a refused step is simply left out and the others commit
    without it. Steps are written in the order of their tasks' ids (and, within a task,
    in the order they came), so two batches (of two processes) take their row locks in
    the same order and cannot deadlock each other. If
    anything fails (a database error, a lost race on an ``Idempotency-Key``), the whole
    batch rolls back and every step goes to the full path: nothing half-written."""
    if len(pending) == 1 and _in_one_statement(pending[0]):
        return [_step_in_one_statement(pending[0])]
    order = sorted(range(len(pending)), key=lambda i: pending[i].write.task_public_id)
    answers: list[dict[str, Any] | None] = [None] * len(pending)
    try:
        with transaction.atomic():
            accepted = _checked([(i, pending[i]) for i in order])
            if accepted:
                for i, answer in _written(accepted):
                    answers[i] = answer
    except IntegrityError:
        # The Idempotency-Key is taken (a retry, or the same key on another body), or a
        # client_step_id raced its twin: the full path answers each step.
        return [None] * len(pending)
    return answers


def _in_one_statement(item: Pending) -> bool:
    """Whether a lone step is written by one statement (``_step_in_one_statement``):
    on Postgres, without an ``Idempotency-Key`` (whose record holds the final answer)."""
    return connection.vendor == "postgresql" and item.idempotency is None


def _step_in_one_statement(item: Pending) -> dict[str, Any] | None:
    """A lone step on Postgres in one statement: the guard, its row locks, the seqs, both
    events and the step row, each part of it only if the guard said yes.

    Why (issue 18, docs/performance.md §8 "Eighth pass"): at 20 steps/s each step is a
    batch of one, and its transaction was six round trips to Postgres after the pool's
    check (``BEGIN``, guard, seqs, two ``INSERT``s, ``COMMIT``), paid in the writer thread
    while the harness and every watcher waited. In autocommit the statement is its own
    transaction: one round trip, its commit included. It makes the batch's checks and
    writes: the task's and the run's rows locked in that order (``FOR UPDATE OF t, r``),
    then the topic's counter row. The lease is checked after any lock wait, against the
    time the statement was sent (our clock) plus the time Postgres spent on it before the
    check (a difference of Postgres's clock, so a skew between the hosts does not enter);
    that time is also the step's and its events' ``created_at``. A replayed
    ``client_step_id``, any failed check and a race lost on the unique ``client_step_id``
    write nothing and answer ``None``: the full path answers them."""
    app, write = item.app, item.write
    guard, guard_params = _guard_read(
        app, write, None, columns="t.id AS task, r.id AS run, r.lease_expires_at AS expires"
    )
    replay, replay_params = "", []
    if write.client_step_id is not None:
        replay = (
            f" AND NOT EXISTS (SELECT 1 FROM {Step._meta.db_table} x "
            "WHERE x.run_id = g.run AND x.client_step_id = %s)"
        )
        replay_params = [write.client_step_id]
    step_id = new_step_id()
    written = events.statement_events(
        org_id=app.org_id,
        topic=f"tasks/{write.task_public_id}",
        task_public_id=write.task_public_id,
        items=_step_events(write, app, step_id),
        source="ok",
    )
    sent_at = connection.ops.adapt_datetimefield_value(timezone.now())
    sql = (
        f"WITH g AS MATERIALIZED ({guard} FOR UPDATE OF t, r), "
        "ok AS MATERIALIZED (SELECT task, run, at FROM (SELECT task, run, expires, "
        "%s::timestamptz + (clock_timestamp() - statement_timestamp()) AS at FROM g) g "
        f"WHERE expires > at{replay}), "
        f"{written.ctes}, "
        f"st AS (INSERT INTO {Step._meta.db_table} (public_id, task_id, run_id, seq, phase, "
        "user_message, internal_label, client_step_id, created_at) "
        f"SELECT %s, ok.task, ok.run, s.last_seq - {len(written.items) - 1}, %s, %s, %s, %s, "
        "ok.at FROM s, ok) "
        "SELECT s.last_seq, ok.at, ok.task FROM s, ok"
    )
    params = [
        *guard_params,
        sent_at,
        *replay_params,
        *written.params,
        step_id,
        write.phase,
        write.user_message,
        write.internal_label,
        write.client_step_id,
    ]
    # Inside a caller's transaction (a test's), in a savepoint, so that a lost race on
    # the unique client_step_id leaves that transaction usable; alone, no transaction of
    # ours around it: the statement is its own.
    scope = transaction.atomic() if connection.in_atomic_block else nullcontext()
    try:
        with scope, connection.cursor() as cursor:
            cursor.execute(sql, params)
            row = cursor.fetchone()
    except IntegrityError:
        return None
    if row is None:
        return None
    last_seq, at, task_pk = int(row[0]), row[1], int(row[2])
    events.announce_written(written.lane_events(last_seq=last_seq, created_at=at, task_pk=task_pk))
    metrics.count_on_commit(partial(metrics.STEPS.inc, 1))
    return {"step_id": step_id, "seq": last_seq - len(written.items) + 1}


@dataclass(frozen=True)
class _Accepted:
    index: int
    item: Pending
    task_pk: int
    run_pk: int
    now: datetime


def _checked(items: list[tuple[int, Pending]]) -> list[_Accepted]:
    """The steps that are a plain yes, with their task's and run's keys; reads only. A
    step that repeats one before it in the batch (its ``client_step_id`` on the same run,
    or its ``Idempotency-Key``) is left out: the full path, after the batch commits,
    answers it as the replay it is."""
    client_ids: set[tuple[int, str]] = set()
    keys: set[tuple[str, str]] = set()
    accepted = []
    with connection.cursor() as cursor:
        guards = _guards(cursor, [item for _, item in items])
        for index, item in items:
            write = item.write
            guard = guards[_guard_key(item)]
            if guard is None:
                continue
            task_pk, run_pk, now = guard
            if write.client_step_id is not None:
                client_id = (run_pk, write.client_step_id)
                if client_id in client_ids or _exists(
                    cursor, Step, "run_id = %s AND client_step_id = %s", client_id
                ):
                    continue  # a replay: the full path answers the first step
                client_ids.add(client_id)
            idem = item.idempotency
            if idem is not None:
                key = (idem.scope, idem.key)
                # The unique (scope, key) still decides a race between two processes.
                if key in keys or _exists(
                    cursor, IdempotencyRecord, "scope = %s AND key = %s", key
                ):
                    continue  # a retry: the full path replays (or refuses) it
                keys.add(key)
            accepted.append(_Accepted(index, item, task_pk, run_pk, now))
    return accepted


def _exists(cursor: Any, model: Any, where: str, params: tuple[Any, ...]) -> bool:
    cursor.execute(f"SELECT 1 FROM {model._meta.db_table} WHERE {where}", list(params))
    return cursor.fetchone() is not None


GuardKey = tuple[Any, ...]
Guard = tuple[int, int, datetime] | None


def _guard_key(item: Pending) -> GuardKey:
    """What a guard's answer depends on: steps with the same key share one guard."""
    write, app = item.write, item.app
    return (app.pk, app.key_hash, write.task_public_id, write.run_id, write.lease_epoch)


def _guards(cursor: Any, items: list[Pending]) -> dict[GuardKey, Guard]:
    """The guard of every distinct key of the batch, in the batch's order (task-id order:
    on Postgres the order the row locks are taken in)."""
    distinct: dict[GuardKey, Pending] = {}
    for item in items:
        distinct.setdefault(_guard_key(item), item)
    if connection.features.has_select_for_update:
        return {key: _guard(cursor, item.app, item.write) for key, item in distinct.items()}
    # SQLite: the transaction holds the one write lock from its BEGIN IMMEDIATE, so every
    # guard of the batch is one read, and all of them one statement (a batch across 50
    # tasks paid a statement per task here; issue 18).
    now = timezone.now()
    reads = [
        _guard_read(
            item.app, item.write, now, columns=f"{position} AS p, t.id AS task, r.id AS run"
        )
        for position, item in enumerate(distinct.values())
    ]
    found: dict[int, Guard] = {}
    # SQLite refuses a compound SELECT of more terms than its limit (500 by default): a
    # batch across more tasks than that is read in several statements.
    terms = _compound_limit(cursor)
    for start in range(0, len(reads), terms):
        chunk = reads[start : start + terms]
        # One row, not a row per guard: Python's sqlite3 lets go of the interpreter for
        # every row it steps and must win it back from the event loop's thread each time,
        # and a batch across 32 tasks stepped 32 rows here (issue 18, docs/performance.md
        # §8).
        cursor.execute(
            "SELECT json_group_array(json_array(p, task, run)) FROM "
            f"({' UNION ALL '.join(sql for sql, _ in chunk)})",
            [param for _, params in chunk for param in params],
        )
        (rows,) = cursor.fetchone()
        found.update({int(p): (int(task), int(run), now) for p, task, run in json.loads(rows)})
    return {key: found.get(position) for position, key in enumerate(distinct)}


def _compound_limit(cursor: Any) -> int:
    """How many SELECTs SQLite lets one ``UNION ALL`` join, as this connection has it."""
    return int(cursor.connection.getlimit(sqlite3.SQLITE_LIMIT_COMPOUND_SELECT))


_TABLES = (Task._meta.db_table, Run._meta.db_table, HarnessApp._meta.db_table)


def _literal(value: str) -> str:
    """A status as an SQL literal. Bound as a parameter, ``status = ?`` on tasks_run made
    SQLite compile the statement again at every execution: the partial unique index
    ``one_live_run_per_task`` (``WHERE status = 'live'``) is usable or not depending on
    the value, so SQLite marks the parameter and re-prepares whenever it is bound. The
    guard of a 32-task batch took 3.2 ms so and 0.2 ms with the literal (issue 18). Only
    the code's own constants come here."""
    assert value.isidentifier(), value
    return f"'{value}'"


# Built once: the guard's SQL is put together per step of every batch.
_LIVE, _IN_PROGRESS = _literal(RunStatus.LIVE), _literal(TaskStatus.IN_PROGRESS)


def _guard_read(
    app: HarnessApp,
    write: StepWrite,
    now: datetime | None,
    *,
    columns: str = "t.id, r.id, r.lease_expires_at",
) -> tuple[str, list[Any]]:
    """guard_write's conditions for a plain yes as one read: the task in progress, the run
    this app's live run, its lease unexpired at ``now`` (and its epoch, when sent), the
    app's key unrevoked. Selects ``columns``: the task's and the run's keys, and the
    lease's expiry. With ``now`` None the lease is left to the caller (Postgres: checked
    after the lock wait)."""
    task_table, run_table, app_table = _TABLES
    # Each condition beside its parameter, so the optional ones cannot fall out of step.
    where = [
        ("t.org_id = %s", app.org_id),
        ("t.public_id = %s", write.task_public_id),
        ("r.public_id = %s", write.run_id),
        ("r.app_id = %s", app.pk),
    ]
    if now is not None:
        where.append(("r.lease_expires_at > %s", connection.ops.adapt_datetimefield_value(now)))
    where.append(("a.key_hash = %s", app.key_hash))
    if write.lease_epoch is not None:
        where.append(("r.lease_epoch = %s", write.lease_epoch))
    sql = (
        f"SELECT {columns} FROM {task_table} t "
        f"JOIN {run_table} r ON r.task_id = t.id JOIN {app_table} a ON a.id = r.app_id "
        f"WHERE t.status = {_IN_PROGRESS} AND r.status = {_LIVE} AND a.revoked_at IS NULL "
        f"AND {' AND '.join(condition for condition, _ in where)}"
    )
    return sql, [value for _, value in where]


def _guard(cursor: Any, app: HarnessApp, write: StepWrite) -> Guard:
    """The guard on Postgres, in one statement: the read above, locking the task's row and
    then the run's (``FOR UPDATE OF t, r`` locks a row's marks in the order named: the
    order every writer takes them in, so a guard waiting for the task holds no lock on its
    run; tests/tasks/test_step_fastlane.py holds it to that). It was two statements, one
    lock each: a batch across 50 tasks now pays 50 fewer (756 steps/s against 683 on this
    machine; a lone step measured the same, docs/performance.md §8 "Sixth pass"). The
    lease is checked against the clock read after the statement, i.e. after any lock
    wait, as guard_write does; an expired one answers None with the locks held to the
    batch's end, as a refused guard_write holds the task's.
    The task's and run's keys and the time of the check, or None."""
    sql, params = _guard_read(app, write, None)
    cursor.execute(f"{sql} FOR UPDATE OF t, r", params)
    row = cursor.fetchone()
    now = timezone.now()  # after the lock wait, which may have taken seconds
    if row is None or row[2] <= now:
        return None
    return int(row[0]), int(row[1]), now


def _written(accepted: list[_Accepted]) -> list[tuple[int, dict[str, Any]]]:
    """Writes the accepted steps: their events (numbered per task, in one ``INSERT``),
    their rows (one ``INSERT``), their ``Idempotency-Key`` records with the answers."""
    step_ids = [new_step_id() for _ in accepted]
    groups: dict[str, list[int]] = {}  # task public id -> positions in accepted, in order
    for position, one in enumerate(accepted):
        groups.setdefault(one.item.write.task_public_id, []).append(position)
    batches = []
    for task_public_id, positions in groups.items():
        first = accepted[positions[0]]
        items = []
        for position in positions:
            write, app, step_id = (
                accepted[position].item.write,
                accepted[position].item.app,
                step_ids[position],
            )
            items += _step_events(write, app, step_id)
        task = events.TaskRef(pk=first.task_pk, public_id=task_public_id)
        batches.append(
            events.DirectEvents(
                org_id=first.item.app.org_id,
                topic=f"tasks/{task_public_id}",
                task=task,
                items=items,
            )
        )
    seqs: list[int] = [0] * len(accepted)
    for positions, recorded in zip(groups.values(), events.record_direct(batches), strict=True):
        for position, step_event in zip(positions, recorded[::2], strict=True):
            seqs[position] = step_event.seq
    ops = connection.ops
    rows, params = [], []
    for one, step_id, seq in zip(accepted, step_ids, seqs, strict=True):
        write = one.item.write
        rows.append("(%s, %s, %s, %s, %s, %s, %s, %s, %s)")
        params += [
            step_id,
            one.task_pk,
            one.run_pk,
            seq,
            write.phase,
            write.user_message,
            write.internal_label,
            write.client_step_id,
            ops.adapt_datetimefield_value(one.now),
        ]
    answers = []
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {Step._meta.db_table} (public_id, task_id, run_id, seq, phase, "
            f"user_message, internal_label, client_step_id, created_at) VALUES {', '.join(rows)}",
            params,
        )
        for one, step_id, seq in zip(accepted, step_ids, seqs, strict=True):
            answer = {"step_id": step_id, "seq": seq}
            answers.append((one.index, answer))
            idem = one.item.idempotency
            if idem is not None:
                # Last, with the final answer: a retry of the same key that got past the
                # read (it waited for the task's lock while the first ran) fails here on
                # the unique (scope, key) and rolls its batch back; the full path replays.
                sql, record = done_record_insert(
                    scope=idem.scope,
                    key=idem.key,
                    fingerprint=idem.fingerprint,
                    status=201,
                    body=answer,
                    created_at=one.now,
                )
                cursor.execute(sql, record)
    metrics.count_on_commit(partial(metrics.STEPS.inc, len(accepted)))
    return answers


def _step_events(
    write: StepWrite, app: HarnessApp, step_id: str
) -> list[tuple[str, dict[str, Any]]]:
    """A step's narration and its timeline entry, as ``step_record`` records them."""
    return [
        (
            events.STEP,
            {
                "phase": write.phase,
                "user_message": write.user_message,
                "internal_label": write.internal_label,
                "run_id": write.run_id,
                "step_id": step_id,
            },
        ),
        (
            events.TIMELINE,
            events.timeline_payload(
                kind="step",
                actor=events.actor_app(app),
                summary=write.user_message,
                run_id=write.run_id,
                step_id=step_id,
                phase=write.phase,
            ),
        ),
    ]


def answer_bytes(answer: dict[str, Any]) -> bytes:
    """The body as DRF's JSONRenderer writes it (compact, UTF-8)."""
    return json.dumps(answer, separators=(",", ":"), ensure_ascii=False).encode()


def enabled() -> bool:
    return bool(settings.ETHER_STEP_FAST_LANE)


# What StepIn accepts and keeps exactly as sent (tasks/serializers/inputs.py): the fast
# lane takes only such bodies, so its step is the one the full path would have stored.
# Anything else (a field to trim, a wrong type, an unknown field, a null or surrogate
# character DRF refuses) goes to the full path, which answers it.
_STEP_FIELDS = frozenset(
    {"run_id", "lease_epoch", "phase", "user_message", "internal_label", "client_step_id"}
)
_RUN_ID = re.compile(r"run_[0-9a-f]{32}")
_REFUSED_CHARACTERS = re.compile("[\x00\ud800-\udfff]")


def _plain(value: Any, max_length: int, *, allow_blank: bool = False) -> bool:
    return (
        isinstance(value, str)
        and len(value) <= max_length
        and (allow_blank or value != "")
        and value == value.strip()
        and _REFUSED_CHARACTERS.search(value) is None
    )


def plain_step(task_public_id: str, data: Any) -> StepWrite | None:
    """The step in ``data`` when StepIn would take it unchanged, else None."""
    if not isinstance(data, dict) or not _STEP_FIELDS.issuperset(data):
        return None
    run_id = data.get("run_id")
    # Optional fields may be absent but not null (StepIn refuses null).
    epoch = data.get("lease_epoch", 1)
    label, client_step_id = data.get("internal_label", ""), data.get("client_step_id", "-")
    if not (isinstance(run_id, str) and _RUN_ID.fullmatch(run_id)):
        return None
    if type(epoch) is not int or not 1 <= epoch < 2**31:
        return None
    if not (
        _plain(data.get("phase"), 64)
        and _plain(data.get("user_message"), 4000)
        and _plain(label, 200, allow_blank=True)
        and _plain(client_step_id, 200)
    ):
        return None
    return StepWrite(
        task_public_id=task_public_id,
        run_id=run_id,
        lease_epoch=data.get("lease_epoch"),
        phase=data["phase"],
        user_message=data["user_message"],
        internal_label=label,
        client_step_id=data.get("client_step_id"),
    )
