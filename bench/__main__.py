"""``python -m bench [--quick] [NAME …]``: runs the benchmarks, prints a Markdown table for
each and writes ``var/bench/NAME.json`` (plus ``var/bench/report.md`` with every table and
the machine). docs/performance.md holds the tables of one full run and what limits them.

Names: fanout, api, steps, contention, scale, connections, markdown, compaction, workers
(default: all).
``--quick`` runs each with tiny sizes in seconds (the smoke test in
tests/test_bench_smoke.py uses it).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import platform
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import common as c
from bench import goals, report

NAMES = [
    "fanout",
    "api",
    "steps",
    "contention",
    "scale",
    "connections",
    "markdown",
    "compaction",
    "workers",
]


def _version(command: list[str]) -> str:
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unavailable"


def machine() -> dict[str, Any]:
    meminfo = Path("/proc/meminfo").read_text().split("\n")[0].split()
    pg = "unavailable"
    if c.postgres_available():
        import psycopg

        with psycopg.connect(c.PG_ADMIN_URL) as db:
            pg = db.execute("SHOW server_version").fetchone()[0]
    redis_version = "unavailable"
    if c.redis_available():
        import redis

        redis_version = redis.Redis.from_url(c.REDIS_URL).info("server")["redis_version"]
    return {
        "cores": os.cpu_count(),
        "ram_gib": round(int(meminfo[1]) / 1024 / 1024, 1),
        "cpu": _cpu_model(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "postgres": pg,
        "redis": redis_version,
        "load_before": os.getloadavg(),
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("names", nargs="*", choices=[*NAMES, []], default=[])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, seconds each")
    parser.add_argument(
        "--snapshot", action="store_true", help="serve the committed HEAD, not the working tree"
    )
    args = parser.parse_args(argv)
    names = args.names or NAMES
    info = machine()
    info["code"] = c.use_snapshot() if args.snapshot else "working tree"
    print(
        f"machine: {info['cores']} cores, {info['ram_gib']} GiB, {info['cpu']}; Python "
        f"{info['python']}, SQLite {info['sqlite']}, Postgres {info['postgres']}, Redis "
        f"{info['redis']}; load {info['load_before'][0]:.2f}; code: {info['code']}"
    )
    sections = [f"machine: `{json.dumps(info)}`", ""]
    failed = []
    outs: dict[str, dict[str, Any]] = {}
    for name in names:
        module = importlib.import_module(f"bench.bench_{name}")
        started = time.perf_counter()
        try:
            out = asyncio.run(module.run(args.quick))
        except Exception as error:
            failed.append(name)
            print(f"\n## {name}: FAILED: {error!r}", file=sys.stderr)
            continue
        elapsed = time.perf_counter() - started
        out["machine"] = info
        out["quick"] = args.quick
        out["seconds"] = round(elapsed, 1)
        out["load_after"] = os.getloadavg()
        outs[name] = out
        path = report.write_json(name, out)
        text = f"\n## {name} ({elapsed:.0f} s, load {out['load_after'][0]:.2f}) → {path}\n\n"
        text += out["table"] + "\n"
        for extra in out.get("tables", []):
            text += "\n" + extra + "\n"
        print(text, flush=True)
        sections.append(text)
    # Last, what the run says of issue 18's goals (bench/goals.py).
    text = f"\n## issue 18 goals, this run\n\n{goals.table(outs)}\n"
    print(text, flush=True)
    sections.append(text)
    (c.OUT / "report.md").write_text("\n".join(sections) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
