"""Times the outline summariser on a 1 MiB working history (64 notes of 16 KiB).

Compaction runs inside the transaction of a harness's result, so it must stay far
below a second even for a task with a long history. Run it with:

    DJANGO_DEBUG=1 .venv/bin/python bench/bench_compaction.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

# The script lives in bench/; the project's packages sit one level up.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from corpus.compaction import OutlineSummariser, WorkingNote, utf8_size

NOTES = 64
NOTE_BYTES = 16 * 1024
BUDGET_BYTES = 8 * 1024  # the memory's half of the default 16 KiB budget
ROUNDS = 5
LIMIT_SECONDS = 1.0


def make_note(n: int) -> WorkingNote:
    """A realistic mix: headings, decisions, open items, narrative, repeats, code, UTF-8."""
    lines = [f"# Attempt {n}: make test_widget deterministic", ""]
    section = 0
    while utf8_size("\n".join(lines)) < NOTE_BYTES:
        section += 1
        lines += [
            f"## Step {section}",
            "",
            f"Looked at the fixture for the {section}th time; the clock is read twice. " * 3,
            "",
            "## Decisions",
            f"- Freeze time in fixture {section % 7}",
            "Decided: no sleep() anywhere.",
            "",
            "## Open questions",
            f"- [ ] check nightly job {n}.{section}",
            f"Should the cache be per test {section % 5}?",
            "TODO: ask about the CI image",
            "- [x] reproduced locally — naïve café ☕ 测试",
            "```bash",
            "# not a heading",
            "pytest -k widget --count 100",
            "```",
            "",
        ]
    body = "\n".join(lines).encode("utf-8")[:NOTE_BYTES].decode("utf-8", "ignore")
    return WorkingNote(path=f"working/run_{n:032x}.md", body=body)


def main() -> int:
    notes = [make_note(n) for n in range(NOTES)]
    total = sum(utf8_size(note.body) for note in notes)
    summariser = OutlineSummariser()
    timings = []
    outputs = set()
    for _ in range(ROUNDS):
        started = time.perf_counter()
        out = summariser.summarise(notes, BUDGET_BYTES).text
        timings.append(time.perf_counter() - started)
        outputs.add(out)
    best, worst = min(timings), max(timings)
    size = utf8_size(next(iter(outputs)))
    print(
        f"{NOTES} notes, {total} bytes in → {size} bytes out (budget {BUDGET_BYTES}); "
        f"best {best * 1000:.1f} ms, worst {worst * 1000:.1f} ms over {ROUNDS} rounds"
    )
    if len(outputs) != 1:
        print("FAIL: the output differed between rounds", file=sys.stderr)
        return 1
    if size > BUDGET_BYTES:
        print("FAIL: the output passed the budget", file=sys.stderr)
        return 1
    if worst >= LIMIT_SECONDS:
        print(f"FAIL: slower than {LIMIT_SECONDS} s", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
