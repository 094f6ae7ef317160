"""Connections: 2,000 idle WebSockets, each subscribed to a task topic, on one daphne
process (SQLite, in-memory layer), beside the baseline app.

- memory per connection: the server's RSS after the sockets are subscribed, minus its RSS
  before (after one warm-up socket), divided by their number;
- resubscribe after a restart: the server is stopped (SIGTERM) and started again on the
  same port; every client reconnects (after 50 to 250 ms, then again until it gets in) and
  subscribes again, Ether's with ``since`` its last seq. Timed from the new process
  listening, and from the stop, until every client is subscribed again.

The clients connect at most 50 at a time (daphne's listen backlog is 50).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from typing import Any

from websockets.asyncio.client import connect

from bench import common as c
from bench import report, servers

CONNECT_AT_ONCE = 50


class Fleet:
    """N clients that stay subscribed, reconnecting whenever the server goes away."""

    def __init__(self, url: str, topic: str, size: int, since: bool) -> None:
        self.url, self.topic, self.size, self.since = url, topic, size, since
        self.limit = asyncio.Semaphore(CONNECT_AT_ONCE)
        self.subscribed = 0  # subscriptions made since the last reset
        self.stopping = False
        self.tasks: list[asyncio.Task[None]] = []
        self.changed = asyncio.Event()

    async def client(self) -> None:
        seq = 0
        while not self.stopping:
            try:
                async with self.limit:
                    ws = await connect(
                        self.url, compression=None, ping_interval=None, open_timeout=60
                    )
                    frame: dict[str, Any] = {"action": "subscribe", "topics": [self.topic]}
                    if self.since:
                        frame["since"] = {self.topic: seq}
                    await ws.send(json.dumps(frame))
                    while '"subscribed"' not in str(reply := await ws.recv()):
                        pass
                    del reply
                self.subscribed += 1
                self.changed.set()
                async for raw in ws:  # idle: only frames of the topic, if any
                    text = raw if isinstance(raw, str) else raw.decode()
                    if '"seq"' in text:
                        seq = max(seq, int(json.loads(text).get("seq") or 0))
            except Exception:
                pass
            if not self.stopping:
                await asyncio.sleep(random.uniform(0.05, 0.25))

    async def until_all(self, label: str, timeout: float = 300) -> None:
        deadline = time.perf_counter() + timeout
        while self.subscribed < self.size:
            if time.perf_counter() > deadline:
                raise RuntimeError(f"{label}: {self.subscribed} of {self.size} in {timeout} s")
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), 1)
            report.progress(label, min(self.subscribed, self.size), self.size)

    def start(self) -> None:
        self.tasks = [asyncio.create_task(self.client()) for _ in range(self.size)]

    async def stop(self) -> None:
        self.stopping = True
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


async def measure(
    name: str, app: str, env: dict[str, str], path: str, topic: str, size: int, since: bool
) -> dict[str, Any]:
    server = servers.start_server(app, env, label=f"connections-{name}")
    fleet = None
    try:
        warm = await connect(f"{server.ws}{path}", compression=None)
        await warm.send(json.dumps({"action": "subscribe", "topics": [topic]}))
        await warm.recv()
        await warm.close()
        await asyncio.sleep(1)
        before = server.rss_bytes()
        fleet = Fleet(f"{server.ws}{path}", topic, size, since)
        started = time.perf_counter()
        fleet.start()
        await fleet.until_all(f"connections {name}: connect {size}")
        connect_s = time.perf_counter() - started
        await asyncio.sleep(2)
        after = server.rss_bytes()
        # Restart on the same port; the clients find the new process by themselves.
        fleet.subscribed = 0
        stopped = time.perf_counter()
        server.stop()
        server = servers.start_server(app, env, port=server.port, label=f"connections-{name}")
        listening = time.perf_counter()
        await fleet.until_all(f"connections {name}: resubscribe {size}")
        done = time.perf_counter()
        return {
            "connections": size,
            "rss_before_mb": round(before / 2**20, 1),
            "rss_after_mb": round(after / 2**20, 1),
            "kib_per_connection": round((after - before) / size / 1024, 1),
            "connect_all_s": round(connect_s, 2),
            "resubscribe_from_listening_s": round(done - listening, 2),
            "resubscribe_from_stop_s": round(done - stopped, 2),
        }
    finally:
        if fleet is not None:
            await fleet.stop()
        server.stop()


async def run(quick: bool) -> dict[str, Any]:
    c.raise_fd_limit()
    size = 50 if quick else 2000
    store = c.sqlite_store("connections")
    data = c.fixtures(store, "connections")
    topic = f"tasks/{data['task_id']}"
    results = {
        "ether": await measure(
            "ether",
            servers.ETHER_APP,
            store.env,
            f"/api/realtime?token={data['token']}",
            topic,
            size,
            since=True,
        ),
        "baseline": await measure(
            "baseline",
            servers.BASELINE_APP,
            {"BASELINE_DB": str(c.OUT / "baseline-conn.sqlite3")},
            "/ws",
            topic,
            size,
            since=False,
        ),
    }
    e, b = results["ether"], results["baseline"]
    rows = [
        [key.replace("_", " "), e[key], b[key], report.ratio(e[key], b[key])]
        for key in (
            "kib_per_connection",
            "rss_before_mb",
            "rss_after_mb",
            "connect_all_s",
            "resubscribe_from_listening_s",
            "resubscribe_from_stop_s",
        )
    ]
    headers = [f"{size:,} idle subscribed WebSockets", "Ether", "baseline", "ratio"]
    return {"results": results, "table": report.table(headers, rows)}
