"""Fan-out latency: from the moment a harness's step POST is sent to the moment its frame
arrives at each WebSocket subscriber of the task's topic.

Two setups, each beside the baseline (``bench/baseline_app.py``) in the same run:
- ``memory``: one daphne process, SQLite, the in-memory channel layer;
- ``redis``: two daphne processes, Postgres, channels-redis (Redis db 5); subscribers
  alternate between the processes, the steps are posted to the first.

Steps are posted one at a time: the next one leaves when every subscriber has the last
(plus a 10 ms gap), so this is latency, not throughput. The subscribers run in this one
asyncio process, so a sample also holds the time the client takes to get to that socket:
with 1000 sockets that is most of it, and it is the same for the baseline.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from bench import client, report, servers
from bench import common as c

MARK = "step-"


class Round:
    """Who has seen which step: one per subscriber count."""

    def __init__(self, subscribers: int) -> None:
        self.subscribers = subscribers
        self.sent: dict[int, float] = {}
        self.seen: dict[int, int] = {}
        self.done: dict[int, asyncio.Event] = {}
        self.samples: list[float] = []

    def expect(self, i: int) -> asyncio.Event:
        self.seen[i] = 0
        self.done[i] = asyncio.Event()
        return self.done[i]

    def arrived(self, i: int, at: float) -> None:
        if i not in self.seen:
            return
        if i in self.sent:  # not a warm-up step
            self.samples.append(at - self.sent[i])
        self.seen[i] += 1
        if self.seen[i] == self.subscribers:
            self.done[i].set()


async def reader(ws: ClientConnection, round_: Round) -> None:
    """Takes the first frame naming each step: Ether also sends a ``task.timeline``
    entry quoting the message, after the step frame."""
    got: set[int] = set()
    try:
        async for raw in ws:
            at = time.perf_counter()
            text = raw if isinstance(raw, str) else raw.decode()
            pos = text.find(MARK)
            if pos < 0:
                continue
            i = int(text[pos + len(MARK) : pos + len(MARK) + 6])
            if i not in got:
                got.add(i)
                round_.arrived(i, at)
    except Exception:
        return


async def subscribe(url: str, frame: str, limit: asyncio.Semaphore) -> ClientConnection:
    async with limit:
        ws = await connect(
            url,
            compression=None,
            max_size=None,
            ping_interval=None,
            open_timeout=120,
            close_timeout=2,
        )
        await ws.send(frame)
        while True:
            reply = await asyncio.wait_for(ws.recv(), 60)
            if '"subscribed"' in str(reply):
                return ws


async def measure(
    *,
    ws_urls: list[str],
    subscribe_frame: str,
    post: Callable[[int], Awaitable[int]],
    subscribers: int,
    steps: int,
    label: str,
    first: int,
) -> dict[str, Any]:
    limit = asyncio.Semaphore(50)
    sockets = await asyncio.gather(
        *(subscribe(ws_urls[n % len(ws_urls)], subscribe_frame, limit) for n in range(subscribers))
    )
    round_ = Round(subscribers)
    readers = [asyncio.create_task(reader(ws, round_)) for ws in sockets]
    posts: list[float] = []
    missing = 0
    warmup = 2
    try:
        for k in range(warmup + steps):
            i = first + k
            done = round_.expect(i)
            started = time.perf_counter()
            if k >= warmup:
                round_.sent[i] = started
            status = await post(i)
            posts.append(time.perf_counter() - started)
            if status >= 300:
                raise RuntimeError(f"{label}: step POST answered {status}")
            try:
                await asyncio.wait_for(done.wait(), 30)
            except TimeoutError:
                if k >= warmup:
                    missing += subscribers - round_.seen[i]
            await asyncio.sleep(0.01)
            report.progress(label, k + 1, warmup + steps)
    finally:
        for task in readers:
            task.cancel()
        await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    return {
        **report.summary_ms(round_.samples),
        "post_p50_ms": report.summary_ms(posts[warmup:])["p50_ms"],
        "missing": missing,
    }


async def one_setup(
    setup: str, counts: dict[int, int], results: dict[str, Any], rows: list[list[Any]]
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
        harness = client.Http(ether[0].port)
        plain = client.Http(base[0].port)
        for server in base:
            await client.Http(server.port).request("GET", "/ready")
        auth = {"Authorization": f"Bearer {data['key']}"}
        step_path = f"/api/harness/tasks/{data['task_id']}/steps"
        topic = f"tasks/{data['task_id']}"

        async def post_ether(i: int) -> int:
            body = {
                "run_id": data["run_id"],
                "phase": "coding_agent",
                "user_message": f"{MARK}{i:06d} ran the widget tests",
            }
            return (await harness.request("POST", step_path, auth, body)).status

        async def post_base(i: int) -> int:
            body = {"phase": "coding_agent", "user_message": f"{MARK}{i:06d} ran the tests"}
            return (await plain.request("POST", f"/steps/{topic}", {}, body)).status

        frame = json.dumps({"action": "subscribe", "topics": [topic]})
        first = 0
        for subscribers, steps in counts.items():
            row: dict[str, Any] = {}
            for name, urls, post in (
                (
                    "ether",
                    [f"{s.ws}/api/realtime?token={data['token']}" for s in ether],
                    post_ether,
                ),
                ("baseline", [f"{s.ws}/ws" for s in base], post_base),
            ):
                row[name] = await measure(
                    ws_urls=urls,
                    subscribe_frame=frame,
                    post=post,
                    subscribers=subscribers,
                    steps=steps,
                    label=f"fan-out {setup} {name} x{subscribers}",
                    first=first,
                )
                first += steps + 2
            results[f"{setup}/{subscribers}"] = row
            e, b = row["ether"], row["baseline"]
            rows.append(
                [
                    setup,
                    subscribers,
                    e["n"],
                    e["p50_ms"],
                    e["p95_ms"],
                    e["p99_ms"],
                    e["max_ms"],
                    b["p50_ms"],
                    b["p99_ms"],
                    report.ratio(e["p50_ms"], b["p50_ms"]),
                    report.ratio(e["p99_ms"], b["p99_ms"]),
                    e["missing"] + b["missing"],
                ]
            )
        await harness.close()
        await plain.close()


async def run(quick: bool) -> dict[str, Any]:
    c.raise_fd_limit()
    counts = {1: 10, 10: 5} if quick else {1: 200, 100: 50, 1000: 20}
    setups = ["memory"] + (["redis"] if c.postgres_available() and c.redis_available() else [])
    results: dict[str, Any] = {}
    rows = []
    for setup in setups:
        await one_setup(setup, counts, results, rows)
    headers = [
        "setup",
        "subscribers",
        "samples",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "max ms",
        "baseline p50",
        "baseline p99",
        "p50 ratio",
        "p99 ratio",
        "missing",
    ]
    return {"results": results, "table": report.table(headers, rows)}
