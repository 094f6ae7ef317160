"""Working-memory compaction: what the next harness can still read, and how fast.

**Retention** (issue 16): a fixed corpus of facts spread over 20 runs' working notes
(decisions, open items, what changed, files touched, and the rest: findings in prose),
each note ~2.2 KB with narrative around the facts. The notes go in one run at a time
through the real services (``document_put`` of ``working/{run}.md``, then
``memory_compact``, as a result does), and after the 20th the ``working`` slice (what
the next claim reads: the memory, then the raw notes beside it) is searched for each
fact's sentence, verbatim. Goal: 100% of decisions and open items, ≥ 90% of the rest
while the budget allows. One run measures 8, 16, 24 and 32 KiB and the default budget
(``ETHER_WORKING_BUDGET_BYTES``), and says whether the goal holds at the default.

Two corpora with the same facts: ``repeated`` prose (the same few narrative sentences in
every note, as the corpus always had) and ``distinct`` prose (every narrative sentence
different, no two notes alike), so a result cannot come from writing repeated prose
once. ``unnamed`` counts facts missing from the slice whose note the memory does not
name as ``omitted:``; it must be 0 (the memory says what it left out).

**Speed**: the outline summariser on a 1 MiB history (64 notes of 16 KiB) must stay far
below a second, since compaction runs inside the transaction of a harness's result.

Runs in a child process (``python -m bench.bench_compaction --child``) on a fresh SQLite
file, like every benchmark that needs Django.
"""

from __future__ import annotations

import json
import random
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


PROSE = ("repeated", "distinct")
_VERBS = ["reread", "traced", "skimmed", "untangled", "followed", "questioned", "compared"]
_NOUNS = ["handler", "fixture", "queue", "schema", "worker", "template", "router", "cache"]
_MORE = ["parser", "session", "reviewer", "teammate", "logger", "scheduler", "client"]
_HOW = ["slowly", "twice", "carefully", "again", "briefly", "patiently", "from the top"]
_WHY = [
    "took longer than it should have",
    "turned out to be a dead end in the end",
    "needed a fresh database and a restart",
    "showed nothing new but ruled a theory out",
    "was mostly waiting for the machine to settle",
    "made the real problem a little clearer",
]


def prose_of(n: int, k: int) -> str:
    """About 250 bytes of narrative, different for every (run, place): no number, code,
    path or identifier, only prose, like the notes' own telling of what they did."""
    pick = random.Random(f"prose-{n}-{k}")
    sentences: list[str] = []
    while len(" ".join(sentences)) < 200:
        sentences.append(
            f"I {pick.choice(_VERBS)} the {pick.choice(_NOUNS)} {pick.choice(_HOW)} while "
            f"the {pick.choice(_MORE)} {pick.choice(_VERBS)} the {pick.choice(_NOUNS)}, "
            f"which {pick.choice(_WHY)}."
        )
    return " ".join(sentences) + " "


def note_of(n: int, prose: str = "repeated") -> str:
    facts = facts_of(n)
    topic = TOPICS[n % len(TOPICS)]
    narrative = (
        f"I started by reading the {topic} code again and the notes of the previous runs. "
        "Most of the time went into reproducing the problem locally with the fixtures, "
        "which needed a fresh database and a couple of restarts of the worker. "
    )
    # The narrative of the note's six places: the same few sentences, or all different.
    told = [prose_of(n, k) for k in range(6)] if prose == "distinct" else [narrative] * 6
    return "\n".join(
        [
            f"# Run {n}: the {topic}",
            "",
            "".join(told[:3]),
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
            facts["rest"][0] + " " + told[3],
            "",
            facts["rest"][1],
            "",
            "## Log",
            "",
            told[4] + told[5],
            "",
        ]
    )


def _readable(fact: str, text: str) -> bool:
    # The fact's sentence, without its list marker, word for word.
    body = fact.removeprefix("- [ ] ").removeprefix("- ")
    return body in text


def retention(budget: int, prose: str = "repeated") -> dict[str, Any]:
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
    corpus = PROSE.index(prose)
    task_ref = f"task_{corpus:016x}{budget:016x}"
    runs = [f"run_{corpus:08x}{budget:08x}{n:016x}" for n in range(RUNS)]
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
                body=note_of(n, prose),
            )
            memory_compact(org=org, task_ref=task_ref)
        timings.append(time.perf_counter() - started)
    scope = TaskScope(
        org=org, task_ref=task_ref, owner_id=None, project_id=None, repo_id=None, run_refs=runs
    )
    (working,) = scope_slices(scope, ["working"])
    text = "\n".join(d.body for d in working.docs)
    memory = next((d.body for d in working.docs if d.path.startswith("memory/")), "")
    kept: dict[str, list[int]] = {kind: [0, 0] for kind in KINDS}
    unnamed = 0
    for n, run in enumerate(runs):
        for kind, facts in facts_of(n).items():
            for fact in facts:
                kept[kind][1] += 1
                readable = _readable(fact, text)
                kept[kind][0] += readable
                # A fact the slice lacks must be in a note the memory names as omitted.
                unnamed += not readable and f"omitted: working/{run}.md, " not in memory
    last = Compaction.objects.filter(org=org).order_by("-pk").first()
    return {
        "budget": budget,
        "prose": prose,
        "shares": {kind: kept[kind][0] / kept[kind][1] for kind in KINDS},
        "counts": kept,
        "met": all(kept[k][0] / kept[k][1] >= GOALS[k] for k in KINDS),
        "unnamed": unnamed,
        "slice_bytes": len(text.encode()),
        "slice_docs": [d.path.split("/")[0] for d in working.docs],
        "notes_bytes": sum(len(note_of(n, prose).encode()) for n in range(RUNS)),
        "memory_bytes": len(memory.encode()),
        "folded": len(last.inputs) if last else 0,
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
    from django.conf import settings

    django.setup()
    default = settings.ETHER_WORKING_BUDGET_BYTES
    budgets = [default] if quick else sorted({8 * 1024, 16 * 1024, 24 * 1024, 32 * 1024, default})
    rows = [retention(b, prose) for prose in PROSE for b in budgets]
    at_default = {r["prose"]: r["met"] for r in rows if r["budget"] == default}
    return {
        "default_budget": default,
        "goal_at_default": all(at_default.values()),
        "goal_at_default_by_prose": at_default,
        "retention": rows,
        "speed": speed(quick),
    }


def _kib(budget: int, default: int) -> str:
    size = f"{budget // 1024} KiB" if budget % 1024 == 0 else f"{budget} B"
    return f"{size} (default)" if budget == default else size


def _tables(data: dict[str, Any]) -> tuple[str, list[str]]:
    default = data["default_budget"]
    rows = []
    for row in data["retention"]:
        shares = row["shares"]
        rows.append(
            [
                row["prose"],
                _kib(row["budget"], default),
                *(f"{shares[k]:.0%}" for k in KINDS),
                "yes" if row["met"] else "no",
                row["unnamed"],
                row["folded"],
                row["memory_bytes"],
                row["slice_bytes"],
                row["max_result_ms"],
            ]
        )
    table = report.table(
        [
            "prose",
            "budget",
            "decisions",
            "open items",
            "what changed",
            "files",
            "rest",
            "goal met",
            "unnamed",
            "notes folded",
            "memory bytes",
            "slice bytes",
            "max ms per result",
        ],
        rows,
    )
    verdict = "holds" if data["goal_at_default"] else "does NOT hold"
    goal = report.table(
        ["default budget", "goal", *(f"{p} prose" for p in PROSE)],
        [
            [
                _kib(default, -1),
                verdict,
                *("met" if data["goal_at_default_by_prose"][p] else "not met" for p in PROSE),
            ]
        ],
    )
    s = data["speed"]
    speed_table = report.table(
        ["notes", "bytes in", "best ms", "worst ms", "deterministic"],
        [[s["notes"], s["bytes_in"], s["best_ms"], s["worst_ms"], s["deterministic"]]],
    )
    return table, [goal, speed_table]


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
