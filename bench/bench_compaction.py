"""Working-memory compaction: what the next harness can still read, and how fast.

**Retention** (issue 16): a fixed corpus of facts spread over 20 runs' working notes
(decisions, open items, what changed, files touched, and the rest: findings in prose),
each note ~2.5 KB with narrative around the facts. The notes go in one run at a time
through the real services (``document_put`` of ``working/{run}.md``, then
``memory_compact``, as a result does), and after the 20th the ``working`` slice (what
the next claim reads: the memory, then the raw notes beside it) is searched for each
fact's sentence, verbatim. Goal: 100% of decisions and open items, ≥ 90% of the rest
while the budget allows. Measured at the default budget (16 KiB) and, in the full run,
at 8 and 32 KiB too.

**Speed**: the outline summariser on a 1 MiB history (64 notes of 16 KiB) must stay far
below a second, since compaction runs inside the transaction of a harness's result.

Runs in a child process (``python -m bench.bench_compaction --child``) on a fresh SQLite
file, like every benchmark that needs Django.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

from bench import common as c
from bench import report

RUNS = 20
KINDS = ["decision", "open", "changed", "files", "rest"]
GOALS = {"decision": 1.0, "open": 1.0, "changed": 0.9, "files": 0.9, "rest": 0.9}
TOPICS = ["orders API", "billing export", "search index", "login flow", "CI pipeline"]


def facts_of(n: int) -> dict[str, list[str]]:
    """The facts run ``n`` writes, by kind: each a sentence with its own id."""
    topic = TOPICS[n % len(TOPICS)]
    return {
        "decision": [
            f"D{n}.1: keep the {topic} behind the feature flag orders_v{n} until QA signs off.",
            f"D{n}.2: we use advisory lock {1000 + n} for the {topic} migration, not a table lock.",
        ],
        "open": [
            f"- [ ] O{n}.1: ask Dana whether the {topic} needs a backfill for tenant {n}.",
            f"TODO O{n}.2: the retry budget of worker {n} is unmeasured under load.",
        ],
        "changed": [
            f"- C{n}.1: moved the {topic} throttle before the serializer (commit a{n:03d}f).",
            f"- C{n}.2: the {topic} tests now freeze time with time_machine (run {n}).",
        ],
        "files": [
            f"- `src/{topic.split()[0]}/handlers_{n}.py`: F{n}.1 the new throttle hook.",
            f"- `tests/{topic.split()[0]}/test_flow_{n}.py`: F{n}.2 regression for the race.",
        ],
        "rest": [
            f"R{n}.1: the {topic} p95 latency was {120 + n} ms before the change.",
            f"R{n}.2: CI is flaky on test_{topic.split()[0]}_{n}; it passes on rerun.",
        ],
    }


def note_of(n: int) -> str:
    facts = facts_of(n)
    topic = TOPICS[n % len(TOPICS)]
    narrative = (
        f"I started by reading the {topic} code again and the notes of the previous runs. "
        "Most of the time went into reproducing the problem locally with the fixtures, "
        "which needed a fresh database and a couple of restarts of the worker. "
    )
    return "\n".join(
        [
            f"# Run {n}: the {topic}",
            "",
            narrative * 3,
            "",
            "## Decisions",
            "",
            *[f"- {fact}" for fact in facts["decision"]],
            "",
            "## Open questions",
            "",
            *facts["open"],
            "",
            "## What changed",
            "",
            *facts["changed"],
            "",
            "## Files touched",
            "",
            *facts["files"],
            "",
            "## Findings",
            "",
            facts["rest"][0] + " " + narrative,
            "",
            facts["rest"][1],
            "",
            "## Log",
            "",
            narrative * 2,
            "",
        ]
    )


def _readable(fact: str, text: str) -> bool:
    # The fact's sentence, without its list marker, word for word.
    body = fact.removeprefix("- [ ] ").removeprefix("- ")
    return body in text


def retention(budget: int) -> dict[str, Any]:
    """Feeds 20 runs' notes through the services at ``budget``; the share of each kind
    of fact the next harness's working slice still has."""
    from django.conf import settings
    from django.db import transaction

    from accounts.models import Org
    from corpus.models import Compaction, DocumentKind
    from corpus.selectors import TaskScope, scope_slices
    from corpus.services import document_put, memory_compact

    settings.ETHER_WORKING_BUDGET_BYTES = budget
    org = Org.objects.create(slug=f"bench-{budget}-{time.monotonic_ns()}", name="bench")
    task_ref = f"task_{budget:032x}"
    runs = [f"run_{budget:016x}{n:016x}" for n in range(RUNS)]
    timings = []
    for n, run in enumerate(runs):
        started = time.perf_counter()
        with transaction.atomic():
            document_put(
                org=org,
                kind=DocumentKind.WORKING,
                task_ref=task_ref,
                run_ref=run,
                title=f"Run {n}",
                body=note_of(n),
            )
            memory_compact(org=org, task_ref=task_ref)
        timings.append(time.perf_counter() - started)
    scope = TaskScope(org=org, task_ref=task_ref, owner_id=None, project_id=None, repo_id=None)
    (working,) = scope_slices(scope, ["working"])
    text = "\n".join(d.body for d in working.docs)
    kept: dict[str, list[int]] = {kind: [0, 0] for kind in KINDS}
    for n in range(RUNS):
        for kind, facts in facts_of(n).items():
            for fact in facts:
                kept[kind][1] += 1
                kept[kind][0] += _readable(fact, text)
    last = Compaction.objects.filter(org=org).order_by("-pk").first()
    return {
        "budget": budget,
        "shares": {kind: kept[kind][0] / kept[kind][1] for kind in KINDS},
        "counts": kept,
        "slice_bytes": len(text.encode()),
        "slice_docs": [d.path.split("/")[0] for d in working.docs],
        "notes_bytes": sum(len(note_of(n).encode()) for n in range(RUNS)),
        "memory_kept_bytes": last.kept_bytes if last else None,
        "memory_dropped_bytes": last.dropped_bytes if last else None,
        "max_result_ms": round(max(timings) * 1000, 1),
    }


def speed(quick: bool) -> dict[str, Any]:
    from corpus.compaction import OutlineSummariser, WorkingNote, utf8_size

    notes_count, note_bytes = (16, 4096) if quick else (64, 16 * 1024)
    notes = []
    for n in range(notes_count):
        body = note_of(n)
        while utf8_size(body) < note_bytes:
            body += "\n" + note_of(n + notes_count)
        data = body.encode()[:note_bytes].decode("utf-8", "ignore")
        notes.append(WorkingNote(path=f"working/run_{n:032x}.md", body=data))
    timings, outputs = [], set()
    for _ in range(1 if quick else 5):
        started = time.perf_counter()
        outputs.add(OutlineSummariser().summarise(notes, 8192).text)
        timings.append(time.perf_counter() - started)
    return {
        "notes": notes_count,
        "bytes_in": notes_count * note_bytes,
        "best_ms": round(min(timings) * 1000, 1),
        "worst_ms": round(max(timings) * 1000, 1),
        "deterministic": len(outputs) == 1,
    }


def child(quick: bool) -> dict[str, Any]:
    import django

    django.setup()
    budgets = [16 * 1024] if quick else [8 * 1024, 16 * 1024, 24 * 1024, 32 * 1024]
    return {"retention": [retention(b) for b in budgets], "speed": speed(quick)}


def _tables(data: dict[str, Any]) -> tuple[str, list[str]]:
    rows = []
    for row in data["retention"]:
        shares = row["shares"]
        met = all(shares[k] >= GOALS[k] for k in KINDS)
        rows.append(
            [
                f"{row['budget'] // 1024} KiB",
                *(f"{shares[k]:.0%}" for k in KINDS),
                "yes" if met else "no",
                row["slice_bytes"],
                row["max_result_ms"],
            ]
        )
    table = report.table(
        [
            "budget",
            "decisions",
            "open items",
            "what changed",
            "files",
            "rest",
            "goal met",
            "slice bytes",
            "max ms per result",
        ],
        rows,
    )
    s = data["speed"]
    speed_table = report.table(
        ["notes", "bytes in", "best ms", "worst ms", "deterministic"],
        [[s["notes"], s["bytes_in"], s["best_ms"], s["worst_ms"], s["deterministic"]]],
    )
    return table, [speed_table]


async def run(quick: bool) -> dict[str, Any]:
    store = c.sqlite_store("compaction")
    done = subprocess.run(
        [c.PY, "-m", "bench.bench_compaction", "--child", *(["--quick"] if quick else [])],
        cwd=c.SRC,
        env=c.django_env(store.env),
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    data = json.loads(done.stdout.strip().splitlines()[-1])
    table, tables = _tables(data)
    return {"table": table, "tables": tables, "results": data}


if __name__ == "__main__" and "--child" in sys.argv:
    print(json.dumps(child("--quick" in sys.argv)))
