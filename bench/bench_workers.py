"""More than one process: steps/s and fan-out for 1 and 2 daphne processes behind haproxy
(the config of ``make run WORKERS=N``), beside the baseline behind the same haproxy.

Ether runs on Postgres + channels-redis, the baseline (``bench/baseline_app.py``) on the
same Postgres and Redis pub/sub; each with 1 and then 2 processes, every request and
every WebSocket through haproxy (leastconn), which spreads them over the processes. Both
measures are open-loop: request ``i`` is due at ``start + i / rate`` whatever happened to
the others, and latency counts from that due time.

- **steps/s**: steps spread over 50 live runs (Ether) or 50 topics (baseline), at rates
  that double until fewer than 90% are done in time or p99 passes a second.
- **fan-out**: steps on one task at a fixed rate to S subscribers connected at once
  through haproxy; a sample is one frame at one subscriber, from the step's due time.
  A frame that has not arrived 10 s after the last step is missing.

Without Postgres and Redis (the smoke run) only the 1-process rows run, on SQLite and
the in-memory layer. The servers' ``/readyz`` requires no worker here (no sweeper runs):
``ETHER_READY_WORKERS`` is empty.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from bench import balancer, client, report, servers
from bench import common as c
from bench.bench_api import Request, open_loop

MARK = "step-"


class Arrivals:
    """When each step's frame reached each subscriber (the first frame naming it)."""

    def __init__(self) -> None:
        self.due: dict[int, float] = {}
        self.accepted: set[int] = set()
        self.samples: list[float] = []
        self.received = 0

    def arrived(self, i: int, at: float) -> None:
        if i in self.due:
            self.samples.append(at - self.due[i])
            self.received += 1


async def reader(ws: ClientConnection, arrivals: Arrivals) -> None:
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
                arrivals.arrived(i, at)
    except Exception:
        return


async def subscribe(url: str, frame: str) -> ClientConnection:
    ws = await connect(url, compression=None, max_size=None, ping_interval=None, open_timeout=120)
    await ws.send(frame)
    while '"subscribed"' not in str(await asyncio.wait_for(ws.recv(), 60)):
        pass
    return ws


async def fanout(
    port: int,
    *,
    ws_url: str,
    topic: str,
    make: Callable[[int], Request],
    subscribers: int,
    rate: float,
    duration: float,
    label: str,
    first: int,
) -> dict[str, Any]:
    """``subscribers`` sockets (opened all at once) hear steps posted at ``rate``; the
    steps are numbered from ``first`` (the number their frames carry)."""
    frame = json.dumps({"action": "subscribe", "topics": [topic]})
    # All at once (a reconnect storm); a socket refused or cut during the storm (haproxy
    # answers 502 when daphne drops a handshake its app did not accept within 5 s) is
    # counted, and the frames are measured on the ones that got in.
    opened = await asyncio.gather(
        *(subscribe(ws_url, frame) for _ in range(subscribers)), return_exceptions=True
    )
    sockets = [ws for ws in opened if not isinstance(ws, BaseException)]
    refused = [repr(ws)[:200] for ws in opened if isinstance(ws, BaseException)]
    arrivals = Arrivals()
    readers = [asyncio.create_task(reader(ws, arrivals)) for ws in sockets]
    total = max(1, int(rate * duration))
    idle: list[client.Http] = []
    statuses: dict[str, int] = {}
    posts: list[float] = []
    start = time.perf_counter() + 0.2

    async def post(i: int) -> None:
        due = start + i / rate
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        arrivals.due[first + i] = due
        http = idle.pop() if idle else client.Http(port)
        try:
            response = await http.request(*make(first + i))
            key = str(response.status)
            idle.append(http)
        except client.HttpError:
            key = "error"
        posts.append(time.perf_counter() - due)
        statuses[key] = statuses.get(key, 0) + 1
        if key.startswith("2"):
            arrivals.accepted.add(first + i)
        report.progress(label, len(posts), total)

    try:
        await asyncio.gather(*(post(i) for i in range(total)))
        expected = len(arrivals.accepted) * len(sockets)
        deadline = time.perf_counter() + 10
        while arrivals.received < expected and time.perf_counter() < deadline:
            await asyncio.sleep(0.05)
    finally:
        for task in readers:
            task.cancel()
        await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
        for http in idle:
            await http.close()
    return {
        **report.summary_ms(arrivals.samples),
        "post_p50_ms": report.summary_ms(posts)["p50_ms"],
        "steps": total,
        "step_errors": total - len(arrivals.accepted),
        "missing": expected - arrivals.received,
        "statuses": statuses,
        "refused_subscribers": len(refused),
        "refusals": sorted(set(refused))[:5],
    }


def _ether(store: c.Store, redis_url: str, channel_prefix: str) -> tuple[dict[str, str], Any]:
    env = {
        **store.env,
        "REDIS_URL": redis_url,
        "ETHER_CHANNEL_PREFIX": channel_prefix,
        "ETHER_READY_WORKERS": "",
        "ETHER_LEASE_SECONDS": "3600",
    }
    data = c.fixtures(store, "api", "--claim-tasks", "0", "--live-tasks", "51")
    return env, data


async def one_setup(
    name: str, processes: int, plan: dict[str, Any], shared: bool
) -> dict[str, Any]:
    """Every measure for Ether or the baseline with ``processes`` processes."""
    tag = secrets.token_hex(4)
    if shared:
        store = c.postgres_store()
        redis_url = c.REDIS_URL
    else:
        store = c.sqlite_store(f"workers-{name}")
        redis_url = ""
    if name == "ether":
        env, data = _ether(store, redis_url, f"bench-{tag}")
        app = servers.ETHER_APP
        auth = {"Authorization": f"Bearer {data['key']}"}
        live, fan = data["live"][:50], data["live"][50]
        topics = [f"tasks/{run['task_id']}" for run in live]

        def step(i: int, run: dict[str, str]) -> Request:
            body = {
                "run_id": run["run_id"],
                "phase": "coding_agent",
                "user_message": f"{MARK}{i:06d} ran the widget tests",
            }
            return "POST", f"/api/harness/tasks/{run['task_id']}/steps", auth, body

        spread = lambda i: step(i, live[i % len(live)])  # noqa: E731
        one_task = lambda i: step(i, fan)  # noqa: E731
        fan_topic = f"tasks/{fan['task_id']}"
        ws_path = f"/api/realtime?token={data['token']}"
    else:
        env = {"BASELINE_DB": store.path, "BASELINE_CHANNEL": f"baseline-{tag}"}
        if redis_url:
            env["BASELINE_REDIS_URL"] = redis_url
        app = servers.BASELINE_APP
        topics = [f"tasks/bench-{n}" for n in range(50)]

        def step(i: int, topic: str) -> Request:
            body = {"phase": "coding_agent", "user_message": f"{MARK}{i:06d} ran the tests"}
            return "POST", f"/steps/{topic}", {}, body

        spread = lambda i: step(i, topics[i % len(topics)])  # noqa: E731
        fan_topic = "tasks/bench-fanout"
        one_task = lambda i: step(i, fan_topic)  # noqa: E731
        # Any path is the baseline's WebSocket; Ether's path sends it through haproxy's
        # stream backend as Ether's are (the request backend allows 64 at once).
        ws_path = "/api/realtime"
    out: dict[str, Any] = {"steps": [], "fanout": {}}
    label = f"workers-{name}-{processes}"
    with (
        servers.servers(app, env, processes, label) as running,
        balancer.balanced([s.port for s in running], label) as port,
    ):
        for _ in range(20):  # warm up: imports, connections, each process
            await client.Http(port).request(*spread(900_000))
        for rate in plan["rates"]:
            await asyncio.to_thread(balancer.settle, port)
            result = await open_loop(
                port, spread, rate, plan["duration"], f"{label} steps @{rate:.0f}/s"
            )
            out["steps"].append(result)
            if result["achieved_rps"] < 0.9 * rate or result["p99_ms"] > 1000:
                break
        first = 0
        for subscribers in plan["subscribers"]:
            await asyncio.sleep(2)  # the last overload drains
            await asyncio.to_thread(balancer.settle, port)
            result = await fanout(
                port,
                ws_url=f"ws://127.0.0.1:{port}{ws_path}",
                topic=fan_topic,
                make=one_task,
                subscribers=subscribers,
                rate=plan["fan_rate"],
                duration=plan["fan_duration"],
                label=f"{label} fan-out x{subscribers} @{plan['fan_rate']:.0f}/s",
                first=first,
            )
            out["fanout"][str(subscribers)] = result
            first += result["steps"] + 1
    return out


def _errors(result: dict[str, Any]) -> int:
    bad = sum(n for k, n in result["statuses"].items() if not k.startswith("2"))
    return bad + result["timeouts"]


def sustained(steps: list[dict[str, Any]]) -> float:
    """The highest rate done in time (90%+ of the offered, p99 under a second)."""
    kept = [
        r["achieved_rps"]
        for r in steps
        if r["achieved_rps"] >= 0.9 * r["offered_rps"] and r["p99_ms"] <= 1000
    ]
    return max(kept, default=0.0)


def tables(results: dict[str, Any], plan: dict[str, Any]) -> tuple[str, str]:
    rows: list[list[Any]] = []
    counts = sorted({int(k.rsplit("/", 1)[1]) for k in results})
    for n in counts:
        ether = {r["offered_rps"]: r for r in results[f"ether/{n}"]["steps"]}
        base = {r["offered_rps"]: r for r in results[f"baseline/{n}"]["steps"]}
        for rate in sorted(set(ether) | set(base)):
            e, b = ether.get(rate), base.get(rate)
            rows.append(
                [
                    n,
                    rate,
                    e["achieved_rps"] if e else "—",
                    e["p50_ms"] if e else "—",
                    e["p99_ms"] if e else "—",
                    _errors(e) if e else "—",
                    b["achieved_rps"] if b else "—",
                    b["p50_ms"] if b else "—",
                    b["p99_ms"] if b else "—",
                    _errors(b) if b else "—",
                    report.ratio(e["p99_ms"], b["p99_ms"]) if e and b else "—",
                ]
            )
    for n in counts:
        e, b = (
            sustained(results[f"ether/{n}"]["steps"]),
            sustained(results[f"baseline/{n}"]["steps"]),
        )
        rows.append([n, "sustained", e, "", "", "", b, "", "", "", report.ratio(e, b)])
    steps = report.table(
        [
            "processes",
            "offered steps/s",
            "Ether done/s",
            "p50 ms",
            "p99 ms",
            "errors",
            "baseline done/s",
            "baseline p50",
            "baseline p99",
            "baseline errors",
            "p99 ratio (done/s ratio when sustained)",
        ],
        rows,
    )
    fan_rows = []
    for n in counts:
        for s in plan["subscribers"]:
            e = results[f"ether/{n}"]["fanout"][str(s)]
            b = results[f"baseline/{n}"]["fanout"][str(s)]
            fan_rows.append(
                [
                    n,
                    s,
                    e["n"],
                    e["p50_ms"],
                    e["p99_ms"],
                    b["p50_ms"],
                    b["p99_ms"],
                    report.ratio(e["p99_ms"], b["p99_ms"]),
                    e["post_p50_ms"],
                    f"{e['step_errors']} / {b['step_errors']}",
                    f"{e['missing']} / {b['missing']}",
                    f"{e['refused_subscribers']} / {b['refused_subscribers']}",
                ]
            )
    fan = report.table(
        [
            "processes",
            "subscribers",
            "frames",
            "p50 ms",
            "p99 ms",
            "baseline p50",
            "baseline p99",
            "p99 ratio",
            "step POST p50 ms",
            "failed steps (Ether / baseline)",
            "missing frames (Ether / baseline)",
            "sockets refused (Ether / baseline)",
        ],
        fan_rows,
    )
    return steps, fan


async def run(quick: bool) -> dict[str, Any]:
    c.raise_fd_limit()
    if not balancer.available():
        note = "| skipped |\n|---|\n| haproxy is not installed (apt-get install haproxy) |"
        return {"results": {}, "table": note}
    shared = c.postgres_available() and c.redis_available()
    plan: dict[str, Any] = (
        {
            "rates": [10.0],
            "duration": 1.0,
            "subscribers": [2, 5],
            "fan_rate": 5.0,
            "fan_duration": 1.0,
        }
        if quick
        else {
            "rates": [25.0, 50.0, 100.0, 200.0, 400.0],
            "duration": 8.0,
            "subscribers": [10, 100, 1000],
            "fan_rate": 20.0,
            "fan_duration": 10.0,
        }
    )
    counts = [1, 2] if shared else [1]
    results: dict[str, Any] = {}
    # Interleaved, so both servers meet the same machine load.
    for n in counts:
        for name in ("ether", "baseline"):
            results[f"{name}/{n}"] = await one_setup(name, n, plan, shared)
    steps, fan = tables(results, plan)
    store = "Postgres + Redis" if shared else "SQLite + in-memory layer (no Postgres/Redis)"
    return {
        "results": results,
        "plan": plan,
        "store": store,
        "table": steps,
        "tables": [fan],
    }
