"""Scale of data: a task with 10,000 steps over 200 runs beside a task with 100 steps.

The large task's runs have 25 steps each but the last, which has the rest (5,025): its
delivery is composed from its steps, so that is the worst case for ``delivery.compose``.
Both tasks end with a submitted result. One daphne process on SQLite; each number is the
median of 5 requests:
- the timeline API, page by page (``?limit=200``, following ``next_cursor`` to the end);
- the replay page (``/tasks/{id}/replay``, signed in) and the SSE stream's first byte;
- ``delivery.compose`` on the last run (timed in-process by ``bench.fixtures``).
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from bench import client, report, servers
from bench import common as c

ROUNDS = 5


async def timed(port: int, path: str, headers: dict[str, str]) -> tuple[float, float, int, Any]:
    """(first byte s, whole response s, bytes, response) on a new connection."""
    http = client.Http(port)
    await http.open()
    started = time.perf_counter()
    await http.send("GET", path, headers)
    status, head = await http.read_head()
    first = time.perf_counter() - started
    body = await http.read_body(head)
    total = time.perf_counter() - started
    await http.close()
    if status != 200:
        raise RuntimeError(f"GET {path} answered {status}: {body[:300]!r}")
    return first, total, len(body), client.Response(status, head, body)


async def sse_first_byte(port: int, path: str, headers: dict[str, str]) -> float:
    """Until the first body bytes of the stream; the stream never ends, so it is cut."""
    http = client.Http(port)
    await http.open()
    started = time.perf_counter()
    await http.send("GET", path, headers)
    await http.read_head()
    assert http.reader is not None
    await http.reader.read(1)
    first = time.perf_counter() - started
    await http.close()
    return first


async def measure_task(port: int, task_id: str, token: str, session: str) -> dict[str, Any]:
    auth = {"Authorization": f"Bearer {token}"}
    pages: list[float] = []
    first_page: list[float] = []
    entries = 0
    for r in range(ROUNDS):
        cursor = None
        n = 0
        while True:
            path = f"/api/tasks/{task_id}/timeline?limit=200"
            if cursor:
                path += f"&cursor={cursor}"
            _, total, _, response = await timed(port, path, auth)
            body = response.json()
            pages.append(total)
            if n == 0:
                first_page.append(total)
            n += 1
            if r == 0:
                entries += len(body["data"])
            cursor = body["next_cursor"]
            if not cursor:
                break
    page_count = len(pages) // ROUNDS
    replay_first, replay_total, replay_bytes = [], [], 0
    cookie = {"Cookie": f"sessionid={session}"}
    for _ in range(ROUNDS):
        first, total, size, _ = await timed(port, f"/tasks/{task_id}/replay", cookie)
        replay_first.append(first)
        replay_total.append(total)
        replay_bytes = size
    sse = [await sse_first_byte(port, f"/api/tasks/{task_id}/events", auth) for _ in range(ROUNDS)]
    ms = 1000.0
    return {
        "timeline_entries": entries,
        "timeline_pages": page_count,
        "timeline_first_page_ms": round(statistics.median(first_page) * ms, 2),
        "timeline_page_p50_ms": round(statistics.median(pages) * ms, 2),
        "timeline_page_max_ms": round(max(pages) * ms, 2),
        "timeline_all_pages_ms": round(sum(pages) / ROUNDS * ms, 1),
        "replay_first_byte_ms": round(statistics.median(replay_first) * ms, 2),
        "replay_total_ms": round(statistics.median(replay_total) * ms, 2),
        "replay_bytes": replay_bytes,
        "sse_first_byte_ms": round(statistics.median(sse) * ms, 2),
    }


async def run(quick: bool) -> dict[str, Any]:
    steps, runs, small = (200, 5, 20) if quick else (10_000, 200, 100)
    store = c.sqlite_store("scale")
    report.progress(f"scale: building {steps} + {small} steps", 0, 1)
    data = c.fixtures(
        store, "scale", "--steps", str(steps), "--runs", str(runs), "--small-steps", str(small)
    )
    report.progress(f"scale: building {steps} + {small} steps", 1, 1)
    results: dict[str, Any] = {"build": data["tasks"]}
    with servers.servers(servers.ETHER_APP, store.env, 1, "scale") as (server,):
        for label in ("small", "large"):
            task = data["tasks"][label]
            out = await measure_task(server.port, task["task_id"], data["token"], data["sessionid"])
            out["compose_ms"] = task["compose_ms"]
            out["last_run_steps"] = task["last_run_steps"]
            results[label] = out
            report.progress(f"scale: measured {label}", 1, 1)
    small_out, large_out = results["small"], results["large"]
    rows = []
    for key, name in (
        ("timeline_entries", "timeline entries"),
        ("timeline_pages", "timeline pages (limit 200)"),
        ("timeline_first_page_ms", "timeline first page, ms"),
        ("timeline_page_p50_ms", "timeline page p50, ms"),
        ("timeline_page_max_ms", "timeline page max, ms"),
        ("timeline_all_pages_ms", "timeline, all pages, ms"),
        ("replay_first_byte_ms", "replay page first byte, ms"),
        ("replay_total_ms", "replay page whole, ms"),
        ("replay_bytes", "replay page bytes"),
        ("sse_first_byte_ms", "SSE first byte, ms"),
        ("last_run_steps", "steps of the composed run"),
        ("compose_ms", "delivery compose, ms"),
    ):
        rows.append(
            [name, small_out[key], large_out[key], report.ratio(large_out[key], small_out[key])]
        )
    headers = ["measure", f"{small} steps, 1 run", f"{steps:,} steps, {runs} runs", "ratio"]
    return {"results": results, "table": report.table(headers, rows)}
