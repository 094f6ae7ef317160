"""Fan-out under an open-loop step rate, after a reconnect storm, beside the bare baseline.

For each subscriber count (1, 10, 100, 1,000), Ether and the baseline
(``bench/baseline_app.py``) take turns, in the same run:

1. **Reconnect storm**: every subscriber opens its WebSocket and subscribes at the same
   moment (no batches, no semaphore), as after a server restart or a network blip.
2. **Open loop**: steps on one task are due at a fixed rate (20/s), ``start + i / rate``,
   each posted when due whatever happened to the others (a new keep-alive connection when
   none is idle); no coordinated omission.
3. Each subscriber records when the frame of each step arrives; the sample is that moment
   minus the step's **due time**. The first steps are a warm-up, not sampled.
4. After the last step is due the run waits ``DRAIN`` seconds for the stragglers; a frame
   of a committed (201) step that has not arrived by then is **lost**. Ether's frames
   carry a per-topic ``seq``: a subscriber that sees a seq skip counts a **gap**.

Setups: ``memory`` (one daphne, SQLite, the in-memory layer) and ``redis`` (two daphne
processes, Postgres, channels-redis; subscribers alternate between them, steps go to the
first; the baseline also runs two processes on Redis pub/sub).

The sockets are ``bench.wsclient`` (a raw asyncio protocol: a few µs a frame), so that
1,000 subscribers of one generator process measure the servers, not the client.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

from bench import client, report, servers, wsclient
from bench import common as c

MARK = b"step-"
RATE = 20.0  # steps due per second
WARMUP = 10  # steps not sampled (the first second)
SEQ = b'"seq":'

Post = Callable[[int], Awaitable[int]]


class Watch:
    """What every subscriber of one measurement saw."""

    def __init__(self, subscribers: int, count_gaps: bool) -> None:
        self.due: dict[int, float] = {}
        self.sampled: set[int] = set()
        self.got: list[set[int]] = [set() for _ in range(subscribers)]
        self.last_seq: list[int] = [0] * subscribers
        self.subscribed: list[asyncio.Future[None]] = []
        self.samples: list[float] = []
        self.gaps = 0
        self.count_gaps = count_gaps
        self.refusals: list[str] = []
        self.subscribers: list[int] = []  # the indexes of the sockets that subscribed

    def on_text(self, k: int) -> wsclient.OnText:
        got, watch = self.got[k], self

        def received(payload: bytes, at: float) -> None:
            pos = payload.find(MARK)
            if pos >= 0:
                i = int(payload[pos + 5 : pos + 11])
                if i not in got:
                    got.add(i)
                    if i in watch.sampled:
                        watch.samples.append(at - watch.due[i])
            elif b'"subscribed"' in payload and not watch.subscribed[k].done():
                watch.subscribed[k].set_result(None)
            if watch.count_gaps:
                s = payload.find(SEQ)
                if s >= 0:
                    end = s + 6
                    while payload[end] in b"0123456789":
                        end += 1
                    seq = int(payload[s + 6 : end])
                    last = watch.last_seq[k]
                    if last and seq > last + 1:
                        watch.gaps += seq - last - 1
                    watch.last_seq[k] = max(last, seq)

        return received


async def storm(
    ports: list[int], path: str, frame: str, watch: Watch, n: int
) -> tuple[list[wsclient.Socket], int]:
    """Every subscriber connects and subscribes at once; returns the sockets that made it
    and how many did not."""
    loop = asyncio.get_running_loop()
    watch.subscribed = [loop.create_future() for _ in range(n)]

    async def one(k: int) -> wsclient.Socket:
        sock = await wsclient.connect(ports[k % len(ports)], path, watch.on_text(k))
        sock.send_text(frame)
        await asyncio.wait_for(watch.subscribed[k], 120)
        return sock

    done = await asyncio.gather(*(one(k) for k in range(n)), return_exceptions=True)
    watch.subscribers = [k for k, s in enumerate(done) if isinstance(s, wsclient.Socket)]
    sockets = [s for s in done if isinstance(s, wsclient.Socket)]
    watch.refusals = sorted({f"{type(e).__name__}: {e}"[:120] for e in done if e not in sockets})
    return sockets, n - len(sockets)


async def open_loop(
    post: Post, first: int, count: int, watch: Watch
) -> list[tuple[int, int, float]]:
    """Posts step ``first + k`` at ``start + k / RATE``; (index, status, seconds) each."""
    results: list[tuple[int, int, float]] = []

    async def one(i: int) -> None:
        try:
            status = await post(i)
        except client.HttpError:
            status = 0
        results.append((i, status, time.perf_counter() - watch.due[i]))

    start = time.perf_counter() + 0.05
    tasks = []
    for k in range(count):
        i = first + k
        due = start + k / RATE
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        watch.due[i] = due
        if k >= WARMUP:
            watch.sampled.add(i)
        tasks.append(asyncio.create_task(one(i)))
    await asyncio.gather(*tasks)
    return results


def poster(port: int, path: Callable[[], str], headers: dict[str, str], body: Callable) -> Post:
    """An open-loop poster: an idle keep-alive connection, or a new one."""
    idle: list[client.Http] = []

    async def post(i: int) -> int:
        conn = idle.pop() if idle else client.Http(port)
        try:
            status = (await conn.request("POST", path(), headers, body(i))).status
        except client.HttpError:
            await conn.close()
            raise
        idle.append(conn)
        return status

    return post


async def measure(
    *,
    ports: list[int],
    path: str,
    frame: str,
    post: Post,
    subscribers: int,
    steps: int,
    first: int,
    drain: float,
    label: str,
    count_gaps: bool,
) -> dict[str, Any]:
    watch = Watch(subscribers, count_gaps)
    started = time.perf_counter()
    sockets, refused = await storm(ports, path, frame, watch, subscribers)
    storm_s = time.perf_counter() - started
    report.progress(label, 1, 3)
    results = await open_loop(post, first, WARMUP + steps, watch)
    report.progress(label, 2, 3)
    committed = {i for i, status, _ in results if status == 201 and i in watch.sampled}
    live = [
        k
        for k, s in zip(watch.subscribers, sockets, strict=True)
        if s.transport and not s.transport.is_closing()
    ]
    deadline = time.perf_counter() + drain
    while time.perf_counter() < deadline:
        if all(committed <= watch.got[k] for k in live):
            break
        await asyncio.sleep(0.05)
    lost = sum(len(committed - watch.got[k]) for k in watch.subscribers)
    closed = [s.close_code for s in sockets if s.close_code is not None]
    for sock in sockets:
        sock.close()
    report.progress(label, 3, 3)
    sampled = [r for r in results if r[0] in watch.sampled]
    errors = [status for _, status, _ in sampled if status != 201]
    return {
        **report.summary_ms(watch.samples),
        "storm_s": round(storm_s, 2),
        "refused": refused,
        "refusals": watch.refusals,
        "steps": len(sampled),
        "committed": len(committed),
        "expected_frames": len(committed) * len(sockets),
        "lost": lost,
        "gaps": watch.gaps,
        "closed": closed,
        "status_503": errors.count(503),
        "errors": len(errors),
        "post": report.summary_ms([seconds for _, _, seconds in sampled]),
    }


async def one_setup(
    setup: str, counts: dict[int, int], drain: float, results: dict[str, Any], rows: list
) -> None:
    if setup == "memory":
        store = c.sqlite_store("fanout")
        base_env = {"BASELINE_DB": str(c.OUT / "baseline-fanout.sqlite3")}
        redis_url, processes = "", 1
    else:
        store = c.postgres_store()
        c.redis_flush()
        base_env = {"BASELINE_DB": store.path, "BASELINE_REDIS_URL": c.REDIS_URL}
        redis_url, processes = c.REDIS_URL, 2
    data = c.fixtures(store, "fanout")
    ether_env = {**store.env, "REDIS_URL": redis_url}
    with (
        servers.servers(servers.ETHER_APP, ether_env, processes, "fanout-ether") as ether,
        servers.servers(servers.BASELINE_APP, base_env, processes, "fanout-base") as base,
    ):
        for server in base:
            await client.Http(server.port).request("GET", "/ready")
        topic = f"tasks/{data['task_id']}"
        frame = json.dumps({"action": "subscribe", "topics": [topic]})
        post_ether = poster(
            ether[0].port,
            lambda: f"/api/harness/tasks/{data['task_id']}/steps",
            {"Authorization": f"Bearer {data['key']}"},
            lambda i: {
                "run_id": data["run_id"],
                "phase": "coding_agent",
                "user_message": f"step-{i:06d} ran the widget tests",
            },
        )
        post_base = poster(
            base[0].port,
            lambda: f"/steps/{topic}",
            {},
            lambda i: {"phase": "coding_agent", "user_message": f"step-{i:06d} ran the tests"},
        )
        first = 0
        for subscribers, steps in counts.items():
            row: dict[str, Any] = {}
            for name, ports, path, post in (
                (
                    "ether",
                    [s.port for s in ether],
                    f"/api/realtime?token={data['token']}",
                    post_ether,
                ),
                ("baseline", [s.port for s in base], "/ws", post_base),
            ):
                row[name] = await measure(
                    ports=ports,
                    path=path,
                    frame=frame,
                    post=post,
                    subscribers=subscribers,
                    steps=steps,
                    first=first,
                    drain=drain,
                    label=f"fan-out {setup} {name} x{subscribers}",
                    count_gaps=name == "ether",
                )
                first += WARMUP + steps
            results[f"{setup}/{subscribers}"] = row
            e, b = row["ether"], row["baseline"]
            rows.append(
                [
                    setup,
                    subscribers,
                    e["steps"],
                    e["p50_ms"],
                    e["p99_ms"],
                    b["p50_ms"],
                    b["p99_ms"],
                    report.ratio(e["p99_ms"], b["p99_ms"]),
                    f"{e['refused']} / {b['refused']}",
                    f"{e['lost']} / {b['lost']}",
                    f"{e['status_503']} / {e['errors']}",
                    e["gaps"],
                    e["post"]["p50_ms"],
                    e["post"]["p99_ms"],
                    f"{e['storm_s']} / {b['storm_s']}",
                ]
            )


def _seconds(subscribers: int, quick: bool) -> int:
    """How long steps are due to ``subscribers``. At 1 subscriber, 10 s gave 200 samples,
    whose p99 is the third-largest: three slow frames of either server decided the ratio.
    30 s gives 600 (p99 the seventh-largest) up to 100 subscribers; 1,000 subscribers have
    200,000 samples in 10 s."""
    if quick:
        return 1
    return 10 if subscribers >= 1000 else 30


async def run(quick: bool) -> dict[str, Any]:
    c.raise_fd_limit()
    sizes = (1, 10) if quick else (1, 10, 100, 1000)
    # ETHER_BENCH_FANOUT="memory:100,1000" runs some of it (while investigating).
    only = os.environ.get("ETHER_BENCH_FANOUT", "")
    if only:
        sizes = tuple(int(n) for n in only.partition(":")[2].split(",") if n) or sizes
    counts = {n: int(RATE * _seconds(n, quick)) for n in sizes}
    drain = 5.0 if quick else 30.0
    setups = ["memory"] + (["redis"] if c.postgres_available() and c.redis_available() else [])
    if only:
        setups = [s for s in setups if s == only.partition(":")[0]]
    results: dict[str, Any] = {"rate": RATE, "warmup": WARMUP, "drain_s": drain}
    rows: list[list[Any]] = []
    for setup in setups:
        await one_setup(setup, counts, drain, results, rows)
    headers = [
        "setup",
        "subscribers",
        "steps",
        "p50 ms",
        "p99 ms",
        "baseline p50",
        "baseline p99",
        "p99 ratio",
        "refused (ether / baseline)",
        "lost (ether / baseline)",
        "503 / errors",
        "seq gaps",
        "POST p50 ms",
        "POST p99 ms",
        "storm s (ether / baseline)",
    ]
    return {"results": results, "table": report.table(headers, rows)}
