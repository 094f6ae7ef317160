"""``python -m bench.profile_requests [--requests N] [--route R …]``: where the time of a
harness request goes, measured with pyinstrument (a sampling profiler) in one process.

Each route is called N times through Django's test client (the whole middleware, DRF and
database path; not daphne's thread hop) against a fresh SQLite file migrated here, with
DEBUG off. Prints, per route, the SQL statements of one request, the wall time per
request and the profile's heaviest frames (self time, aggregated by function), which is
what docs/performance.md ("Where a step's time goes") quotes before and after issue 18.
"""

# Settings must be chosen before django.setup().
# ruff: noqa: E402

from __future__ import annotations

import argparse
import os
import secrets
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DB = ROOT / "var" / "bench" / "profile.sqlite3"
DB.parent.mkdir(parents=True, exist_ok=True)
for suffix in ("", "-wal", "-shm"):
    Path(f"{DB}{suffix}").unlink(missing_ok=True)
os.environ.update(
    {
        "DJANGO_SETTINGS_MODULE": "ether_site.settings",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": "profile-" + secrets.token_hex(8),
        "DATABASE_URL": "",
        "REDIS_URL": "",
        "ETHER_SQLITE_PATH": str(DB),
        "ETHER_LOG_LEVEL": "WARNING",
        "ETHER_SSL_REDIRECT": "0",
        "ETHER_RATE_HARNESS": "off",
        "ETHER_RATE_CLAIM": "off",
        "ETHER_LEASE_SECONDS": "3600",
    }
)

import django

django.setup()

from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from pyinstrument import Profiler

from bench.fixtures import make_tasks, new_app, world
from tasks.services import lease_claim


def _bucket(path: str, function: str) -> str:
    if "sqlite3" in function.lower() or ("execute" in function and "<built-in>" in path):
        return "database driver (execute, fetch)"
    if "/django/db/" in path:
        return "Django ORM (building and reading queries)"
    if "/rest_framework/" in path:
        return "DRF"
    if "/django/" in path:
        return "Django (handler, middleware, test client)"
    if str(ROOT) in path and "/.venv/" not in path:
        return "Ether's own code"
    return "other (stdlib, json, …)"


def summarise(profiler: Profiler, top: int) -> tuple[list[tuple[str, float]], dict[str, float]]:
    """Inclusive time of Ether's own functions (each counted once per stack), and self
    time by layer; both as shares of the profile's total."""
    session = profiler.last_session
    assert session is not None
    root = session.root_frame()
    inclusive: dict[str, float] = {}
    layers: dict[str, float] = {}

    def walk(frame: Any, seen: frozenset[str], parent_path: str = "") -> None:
        path = frame.file_path or parent_path or "<built-in>"
        name = f"{frame.function} ({Path(path).parent.name}/{Path(path).name})"
        ours = str(ROOT) in path and "/.venv/" not in path and "profile_requests" not in path
        if ours and name not in seen:
            inclusive[name] = inclusive.get(name, 0.0) + frame.time
            seen = seen | {name}
        if not frame.children:  # a leaf ([self], a built-in): where the time was spent
            layer = _bucket(path, frame.function)
            layers[layer] = layers.get(layer, 0.0) + frame.time
        for child in frame.children:
            walk(child, seen, path)

    walk(root, frozenset())
    total = root.time or 1.0
    ranked = sorted(inclusive.items(), key=lambda kv: kv[1], reverse=True)[:top]
    return [(n, t / total) for n, t in ranked], {k: v / total for k, v in layers.items()}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_requests")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument(
        "--route", action="append", choices=["step", "heartbeat", "claim", "context_doc"]
    )
    parser.add_argument("--tree", action="store_true", help="also print pyinstrument's tree")
    args = parser.parse_args()
    call_command("migrate", "--no-input", verbosity=0)
    org, user, _token = world()
    app, key = new_app(org, "profile")
    n = args.requests
    live = make_tasks(org, user, 1)[0]
    run = lease_claim(app=app, task=live).run
    ready = iter(make_tasks(org, user, n + 10))
    headers = {"HTTP_AUTHORIZATION": f"Bearer {key}", "HTTP_HOST": "127.0.0.1"}
    client = Client()
    base = f"/api/harness/tasks/{live.public_id}"

    def post(path: str, body: dict[str, Any]) -> Any:
        return client.post(path, body, content_type="application/json", **headers)

    calls: dict[str, Callable[[], Any]] = {
        "step": lambda: post(
            f"{base}/steps",
            {"run_id": run.public_id, "phase": "coding_agent", "user_message": "Ran the tests"},
        ),
        "heartbeat": lambda: post(f"{base}/heartbeat", {"run_id": run.public_id}),
        "claim": lambda: post(
            f"/api/harness/tasks/{next(ready).public_id}/claim", {"app_id": app.app_id}
        ),
        "context_doc": lambda: client.get(
            f"/api/harness/context/doc/task/{live.public_id}.md?task_id={live.public_id}",
            **headers,
        ),
    }
    for name in args.route or list(calls):
        call = calls[name]
        for _ in range(5):  # warm up: imports, connections, caches
            assert call().status_code < 300
        with CaptureQueriesContext(connection) as captured:
            assert call().status_code < 300
        statements = [query["sql"] for query in captured.captured_queries]  # read now: lazy
        profiler = Profiler(interval=0.0002)
        started = time.perf_counter()
        with profiler:
            for _ in range(n):
                response = call()
                assert response.status_code < 300, response.content
        per_request = (time.perf_counter() - started) / n * 1000
        print(f"\n## {name}: {per_request:.2f} ms per request, {len(statements)} SQL statements")
        for sql in statements:
            print(f"    sql: {sql[:110]}")
        functions, layers = summarise(profiler, args.top)
        print(f"\n| {name}: layer (self time) | share |\n|---|---|")
        for layer, share in sorted(layers.items(), key=lambda kv: kv[1], reverse=True):
            print(f"| {layer} | {share:.1%} |")
        print(f"\n| {name}: Ether function (inclusive) | share |\n|---|---|")
        for function, share in functions:
            print(f"| `{function}` | {share:.1%} |")
        if args.tree:
            print(profiler.output_text(unicode=False, color=False, show_all=False))


if __name__ == "__main__":
    main()
