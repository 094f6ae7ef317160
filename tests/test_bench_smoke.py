"""Every benchmark runs in quick mode (tiny sizes, SQLite and the in-memory layer only),
so `make bench` does not rot between full runs. The numbers are not checked: only that
each benchmark completes, writes its JSON and prints its table."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
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


def test_every_benchmark_runs_in_quick_mode(tmp_path):
    env = {**os.environ, "ETHER_BENCH_OUT": str(tmp_path), "ETHER_BENCH_SQLITE_ONLY": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for name in NAMES:
        data = json.loads((tmp_path / f"{name}.json").read_text())
        assert data["quick"] is True
        assert data["table"].startswith("|")
        assert f"## {name}" in done.stdout
    contention = json.loads((tmp_path / "contention.json").read_text())
    assert all(r["one_winner"] == r["rounds"] for r in contention["results"].values())
    # The run ends with issue 18's goals judged on it (bench/goals.py), each with a verdict.
    goals = done.stdout.split("## issue 18 goals, this run", 1)[1]
    for goal in ("1. steps/s", "2. fan-out", "3. past capacity", "4. step POST", "5. 1 and 2"):
        line = next(row for row in goals.splitlines() if goal in row)
        assert line.rstrip(" |").endswith(("met", "NOT met", "not run")), line
