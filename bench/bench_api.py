"""Harness API throughput and latency under a constant arrival rate.

An open-loop generator: request ``i`` is due at ``start + i / rate`` whatever happened to
the ones before, and its latency is measured from that due time, so a server that falls
behind shows it in the percentiles instead of slowing the generator down (no coordinated
omission). A request that finds no idle keep-alive connection opens a new one.

Four routes, each on SQLite and on Postgres, one daphne process (the in-memory layer):
claims on distinct ready tasks, heartbeats and steps spread over 50 live runs, and reads
of a task document. The rate doubles until the server cannot keep up (fewer than 90% of
the offered requests done in time, or p99 over a second). Beside each route: its SQL
queries per request, on a task with 1 step and 1 run and on one with 50 of each.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from bench import client, report, servers
from bench import common as c

Request = tuple[str, str, dict[str, str], Any]


async def open_loop(
    port: int, make: Callable[[int], Request], rate: float, duration: float, label: str
) -> dict[str, Any]:
    total = int(rate * duration)
    idle: list[client.Http] = []
    opened = 0
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    done = 0
    start = time.perf_counter() + 0.2

    async def one(i: int) -> None:
        nonlocal opened, done
        due = start + i / rate
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        if idle:
            http = idle.pop()
        else:
            http = client.Http(port)
            opened += 1
        method, path, headers, body = make(i)
        try:
            response = await http.request(method, path, headers, body)
            key = str(response.status)
            idle.append(http)
        except client.HttpError:
            key = "error"
        latencies.append(time.perf_counter() - due)
        statuses[key] = statuses.get(key, 0) + 1
        done += 1
        if done % max(1, total // 50) == 0 or done == total:
            report.progress(label, done, total)

    tasks = [asyncio.create_task(one(i)) for i in range(total)]
    _finished, pending = await asyncio.wait(tasks, timeout=duration + 30)
    for task in pending:
        task.cancel()
    # The schedule spans `duration`; a server that lags stretches it.
    elapsed = max(duration, time.perf_counter() - start)
    for http in idle:
        await http.close()
    ok = sum(n for k, n in statuses.items() if k.startswith("2") or k == "304")
    return {
        "offered_rps": rate,
        "achieved_rps": round(ok / elapsed, 1),
        "ok": ok,
        "statuses": statuses,
        "timeouts": len(pending),
        "connections": opened,
        **report.summary_ms(latencies),
    }


async def one_store(
    store_name: str,
    rates: list[float],
    duration: float,
    results: dict[str, Any],
    rows: list[list[Any]],
) -> None:
    store = c.sqlite_store("api") if store_name == "sqlite" else c.postgres_store()
    queries = c.fixtures(store, "queries")
    data = c.fixtures(
        store,
        "api",
        "--claim-tasks",
        str(int(sum(rates) * duration) + 10),
        "--live-tasks",
        "50",
    )
    auth = {"Authorization": f"Bearer {data['key']}"}
    live = data["live"]
    claims = iter(data["claim_tasks"])

    def claim(i: int) -> Request:
        task = next(claims)
        return "POST", f"/api/harness/tasks/{task}/claim", auth, {"app_id": data["app_id"]}

    def heartbeat(i: int) -> Request:
        run_ = live[i % len(live)]
        path = f"/api/harness/tasks/{run_['task_id']}/heartbeat"
        return "POST", path, auth, {"run_id": run_["run_id"]}

    def step(i: int) -> Request:
        run_ = live[i % len(live)]
        body = {
            "run_id": run_["run_id"],
            "phase": "coding_agent",
            "user_message": f"Step {i}: ran the widget tests",
        }
        return "POST", f"/api/harness/tasks/{run_['task_id']}/steps", auth, body

    def context_doc(i: int) -> Request:
        task = live[i % len(live)]["task_id"]
        return "GET", f"/api/harness/context/doc/task/{task}.md?task_id={task}", auth, None

    ops = {"claim": claim, "heartbeat": heartbeat, "step": step, "context_doc": context_doc}
    with servers.servers(
        servers.ETHER_APP, {**store.env, "ETHER_LEASE_SECONDS": "3600"}, 1, f"api-{store_name}"
    ) as (server,):
        # Warm up: the first requests import and connect.
        for make in ops.values():
            if make is not claim:
                for i in range(5):
                    await client.Http(server.port).request(*make(i))
        for op, make in ops.items():
            for rate in rates:
                label = f"api {store_name} {op} @{rate:.0f}/s"
                out = await open_loop(server.port, make, rate, duration, label)
                out["queries_1"] = queries["1"][op]
                out["queries_50"] = queries["50"][op]
                results[f"{store_name}/{op}/{rate:.0f}"] = out
                rows.append(
                    [
                        store_name,
                        op,
                        rate,
                        out["achieved_rps"],
                        out["p50_ms"],
                        out["p95_ms"],
                        out["p99_ms"],
                        out["max_ms"],
                        sum(n for k, n in out["statuses"].items() if not k.startswith("2"))
                        + out["timeouts"],
                        f"{out['queries_1']} / {out['queries_50']}",
                    ]
                )
                saturated = out["achieved_rps"] < 0.9 * rate or out["p99_ms"] > 1000
                if saturated:
                    break


async def run(quick: bool) -> dict[str, Any]:
    c.raise_fd_limit()
    rates = [10.0] if quick else [25.0, 50.0, 100.0, 200.0]
    duration = 1.0 if quick else 8.0
    stores = ["sqlite"] + (["postgres"] if c.postgres_available() else [])
    results: dict[str, Any] = {}
    rows = []
    for store_name in stores:
        await one_store(store_name, rates, duration, results, rows)
    headers = [
        "store",
        "route",
        "offered/s",
        "done/s",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "max ms",
        "errors",
        "SQL/request (1 / 50 steps+runs)",
    ]
    return {"results": results, "table": report.table(headers, rows)}
