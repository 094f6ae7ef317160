"""Contention: 64 harness apps claim one ready task at the same moment, through two daphne
processes (32 each), round after round on a fresh task.

Every round must have exactly one winner (200) and 63 losers (409: ``lease_held``, or
``lease_lost`` for a claim that lost the conditional UPDATE after the lock); afterwards
the database must hold exactly one run per claimed task. Any other answer is a failure.
Also reported: the claim latency of the winners and of everybody.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bench import client, report, servers
from bench import common as c

CLAIMERS = 64


async def rounds(store: c.Store, count: int, label: str) -> dict[str, Any]:
    data = c.fixtures(store, "contention", "--apps", str(CLAIMERS), "--tasks", str(count))
    outcomes = {"one_winner": 0, "no_winner": 0, "several_winners": 0}
    codes: dict[str, int] = {}
    everyone: list[float] = []
    winners: list[float] = []
    with servers.servers(servers.ETHER_APP, store.env, 2, f"contention-{store.name}") as pair:
        clients = [client.Http(pair[n % 2].port) for n in range(CLAIMERS)]
        for http in clients:
            await http.open()

        async def claim(n: int, task: str) -> tuple[int, str, float]:
            app = data["apps"][n]
            started = time.perf_counter()
            response = await clients[n].request(
                "POST",
                f"/api/harness/tasks/{task}/claim",
                {"Authorization": f"Bearer {app['key']}"},
                {"app_id": app["app_id"]},
            )
            code = response.json().get("code", "") if response.status != 200 else "ok"
            return response.status, code, time.perf_counter() - started

        for r, task in enumerate(data["tasks"]):
            answers = await asyncio.gather(*(claim(n, task) for n in range(CLAIMERS)))
            won = 0
            for status, code, seconds in answers:
                codes[f"{status} {code}"] = codes.get(f"{status} {code}", 0) + 1
                everyone.append(seconds)
                if status == 200:
                    won += 1
                    winners.append(seconds)
            key = "one_winner" if won == 1 else "no_winner" if won == 0 else "several_winners"
            outcomes[key] += 1
            report.progress(label, r + 1, count)
        for http in clients:
            await http.close()
    stored = c.fixtures(store, "verify_claims")
    return {
        "rounds": count,
        **outcomes,
        "answers": codes,
        "db": stored,
        "winner": report.summary_ms(winners),
        "all": report.summary_ms(everyone),
    }


async def run(quick: bool) -> dict[str, Any]:
    c.raise_fd_limit()
    plan = [("sqlite", 3)] if quick else [("postgres", 1000), ("sqlite", 300)]
    if not c.postgres_available():
        plan = [p for p in plan if p[0] != "postgres"]
    results: dict[str, Any] = {}
    rows = []
    for name, count in plan:
        store = c.sqlite_store("contention") if name == "sqlite" else c.postgres_store()
        out = await rounds(store, count, f"contention {name} x{CLAIMERS}")
        results[name] = out
        ok = out["one_winner"] == count and out["db"]["tasks_with_more_than_one_run"] == 0
        rows.append(
            [
                name,
                count,
                out["one_winner"],
                out["no_winner"] + out["several_winners"],
                "yes" if ok else "NO",
                out["winner"]["p50_ms"],
                out["all"]["p50_ms"],
                out["all"]["p95_ms"],
                out["all"]["p99_ms"],
                out["all"]["max_ms"],
                ", ".join(f"{k}: {v}" for k, v in sorted(out["answers"].items())),
            ]
        )
    headers = [
        "store",
        "rounds",
        "one winner",
        "other",
        "exactly one, every round",
        "winner p50 ms",
        "all p50 ms",
        "all p95 ms",
        "all p99 ms",
        "all max ms",
        "answers",
    ]
    return {"results": results, "table": report.table(headers, rows)}
