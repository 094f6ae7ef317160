"""The memory's dense format (``outline-v3``): one section per kind across the notes,
sentences of findings kept without the prose around them, repeats written once, open
items a later note ticks off carried by the tick; and the retention goal at the default
budget, through the real services."""

from __future__ import annotations

import pytest

from bench.bench_compaction import PROSE, retention
from corpus.compaction import OutlineSummariser, WorkingNote, note_blocks, utf8_size
from corpus.models import Compaction, Document, DocumentKind
from tests.corpus.test_compaction import memory_of, raw_docs, run_once, working_slice


def summarise(bodies: list[str], budget: int = 100_000):
    notes = [WorkingNote(f"working/run_{n}.md", body) for n, body in enumerate(bodies)]
    return OutlineSummariser().summarise(notes, budget)


def content_bytes(bodies: list[str]) -> int:
    return sum(b.size for body in bodies for b in note_blocks(body)[1])


def section(text: str, title: str) -> list[str]:
    """The lines of one ``## title`` section of the memory."""
    lines = text.split("\n")
    start = lines.index(f"## {title}")
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), None)
    return lines[start + 1 : end]


RUN_0 = """# Run 0: rate limits

## Decisions

- Throttle per API key, not per IP.

## Open questions

- [ ] ask ops about the proxy headers
- [ ] measure p95 under load

## What changed

- moved the check before the serializer

## Files touched

- `orders/api.py`: the throttle hook
"""

RUN_1 = """# Run 1: rate limits

## Decisions

- Keep the 429 body as a problem document.

## What changed

- [x] ask ops about the proxy headers: they send X-Forwarded-For, trusted

## Files touched

- `orders/api.py`: the throttle hook
- `orders/tests/test_api.py`
"""


def test_one_section_per_kind_newest_note_first_with_a_list_of_the_notes():
    summary = summarise([RUN_0, RUN_1])
    out = summary.text
    lines = out.split("\n")
    # Each kind once, in the order a reader needs them; the notes' own headings are gone.
    titles = [line for line in lines if line.startswith("#")]
    assert titles == [
        "# Compacted working memory",
        "## Decisions",
        "## Open items",
        "## What changed",
        "## Files touched",
    ]
    # The list maps each label to its raw note, newest first; nothing was left out.
    assert lines.index("- r2 working/run_1.md") < lines.index("- r1 working/run_0.md")
    assert section(out, "Decisions") == [
        "",
        "r2:",
        "- Keep the 429 body as a problem document.",
        "",
        "r1:",
        "- Throttle per API key, not per IP.",
        "",
    ]
    # A file named again by a later note is listed once, under the note that named it last.
    files = section(out, "Files touched")
    assert files.count("- `orders/api.py`: the throttle hook") == 1
    assert files[:4] == [
        "",
        "r2:",
        "- `orders/api.py`: the throttle hook",
        "- `orders/tests/test_api.py`",
    ]
    assert (summary.kept_bytes, summary.dropped_bytes, summary.dropped) == (
        content_bytes([RUN_0, RUN_1]),
        0,
        [],
    )


def test_an_open_item_a_later_note_ticks_off_is_written_once_as_settled():
    summary = summarise([RUN_0, RUN_1])
    out = summary.text
    assert "- [ ] ask ops about the proxy headers" not in out
    assert section(out, "Open items") == ["", "r1:", "- [ ] measure p95 under load", ""]
    assert "- [x] ask ops about the proxy headers: they send X-Forwarded-For, trusted" in section(
        out, "What changed"
    )
    # Its words are in the memory (in the tick): counted kept, nothing dropped.
    assert summary.kept_bytes == content_bytes([RUN_0, RUN_1])
    assert summary.dropped == []


def test_a_tick_of_other_words_resolves_nothing():
    earlier = "## Open\n\n- [ ] a\n- [ ] check the nightly job\n"
    later = "## Done\n\n- [x] apple\n- [x] check the nightly\n"
    out = summarise([earlier, later]).text
    # "apple" does not settle "a", nor "check the nightly" the longer item.
    assert "- [ ] a" in out.split("\n")
    assert "- [ ] check the nightly job" in out


def test_over_budget_a_tick_is_kept_as_hard_as_the_open_item_it_settles():
    changed = "\n".join(f"- changed thing {i} " + "x" * 60 for i in range(20))
    notes = [RUN_0, f"## What changed\n\n{changed}\n\n" + RUN_1]
    full = summarise(notes)
    budget = utf8_size(full.text) // 2
    summary = summarise(notes, budget)
    out = summary.text
    assert utf8_size(out) <= budget
    # What changed is cut, but not the tick that settles an open item, nor that item.
    assert sum(f"- changed thing {i} " in out for i in range(20)) < 20
    assert "- [x] ask ops about the proxy headers: they send X-Forwarded-For, trusted" in out
    assert "- [ ] measure p95 under load" in out
    assert summary.dropped[-1]["path"] == "working/run_1.md"
    assert f" omitted: working/run_1.md, {summary.dropped[-1]['bytes']} bytes\n" in out
    assert summary.kept_bytes + summary.dropped_bytes == full.kept_bytes


FINDINGS = (
    "I read the code again, slowly, and went for a walk to think about it. "
    "The p95 was 180 ms before the change. It took a while to see why, as usual."
)


def test_a_concrete_sentence_is_kept_without_the_prose_around_it():
    notes = [f"## Decisions\n\n- keep the cache\n\n## Findings\n\n{FINDINGS}\n"]
    full = summarise(notes)
    assert FINDINGS in full.text  # with room, the paragraph is whole, as written
    summary = summarise(notes, utf8_size(full.text) - 40)
    out = summary.text
    assert "- keep the cache" in out
    assert "The p95 was 180 ms before the change." in out
    assert "went for a walk" not in out
    # Exactly the prose sentences left out are accounted as dropped, and named.
    prose = [b for b in note_blocks(notes[0])[1] if b.kind == "narrative"]
    gone = [b for b in prose if b.text not in out]
    assert gone and len(gone) < len(prose) + 1
    assert summary.dropped == [
        {"path": "working/run_0.md", "bytes": sum(b.size for b in gone), "blocks": len(gone)}
    ]
    assert f"- r1 omitted: working/run_0.md, {summary.dropped_bytes} bytes\n" in out


def test_prose_every_note_repeats_is_written_once_and_counted_kept():
    repeated = "We reproduced it with a fresh database and restarted the worker twice. "
    bodies = [f"## Findings\n\n{repeated}Run {n} saw {100 + n} errors.\n" for n in range(5)]
    summary = summarise(bodies)
    assert summary.text.count(repeated.strip()) == 1
    for n in range(5):
        assert f"Run {n} saw {100 + n} errors." in summary.text
    assert summary.kept_bytes == content_bytes(bodies) and summary.dropped == []


WHAT = ["reviewer", "teammate", "worker", "parser", "cache", "router", "logger", "queue"]


def test_through_results_the_stored_memory_has_the_sections_and_settles_ticked_items(
    world, task, settings
):
    settings.ETHER_WORKING_BUDGET_BYTES = 1024

    def filler(who: str) -> str:
        # Prose that names nothing, different in every note (so none of it is a repeat).
        told = [f"The {who} {what} wandered off again." for what in WHAT]
        return "\n\n## Log\n\n" + " ".join(told) + "\n"

    bodies = [RUN_0 + filler("tired"), RUN_1 + filler("sleepy"), "## Decisions\n\n- ship it\n"]
    runs = [run_once(world, task, body) for body in bodies]
    memory = memory_of(task)
    # Run 1's note passed the budget and folded run 0's; run 2's folded both.
    first, compaction = Compaction.objects.order_by("pk")
    assert [row["path"] for row in first.inputs] == [f"working/{runs[0]}.md"]
    folded = [row["path"] for row in compaction.inputs]
    assert folded == [f"working/{runs[0]}.md", f"working/{runs[1]}.md"]
    body = memory.body
    assert (
        body
        == OutlineSummariser()
        .summarise(
            [WorkingNote(d.path, d.body) for d in raw_docs(task)[:2]], compaction.budget_bytes
        )
        .text
    )
    assert "## Decisions" in body and "## Open items" in body
    assert "- [ ] ask ops about the proxy headers" not in body
    assert "- [x] ask ops about the proxy headers" in body
    # The prose did not fit; the record and the memory name it, note by note.
    assert compaction.summariser == "outline-v3"
    assert compaction.dropped_bytes == sum(row["bytes"] for row in compaction.dropped) > 0
    for row, run in zip(compaction.dropped, runs, strict=False):
        assert row["path"] == f"working/{run}.md"
        assert f" omitted: {row['path']}, {row['bytes']} bytes\n" in body
    docs = working_slice(world, task)
    assert [d["path"] for d in docs] == [memory.path, f"working/{runs[2]}.md"]
    assert Document.objects.filter(kind=DocumentKind.WORKING, task_ref=task.public_id).count() == 3


@pytest.mark.parametrize("prose", PROSE)
def test_the_retention_goal_holds_at_the_default_budget(db, settings, prose):
    """The benchmark's corpus through the real services at the default budget: every
    decision and open item, ≥ 90% of the rest, and every missing fact in a note the
    memory names as omitted."""
    default = settings.ETHER_WORKING_BUDGET_BYTES
    assert default == 24 * 1024
    result = retention(default, prose)
    assert result["met"], result["shares"]
    assert result["shares"]["decision"] == result["shares"]["open"] == 1.0
    assert result["unnamed"] == 0
    assert result["slice_bytes"] <= default + 2  # the documents joined by newlines
    last = Compaction.objects.order_by("-pk").first()
    assert len(last.inputs) == result["folded"]
    assert last.bytes_after == last.memory.size == result["memory_bytes"] <= last.budget_bytes
    assert last.dropped_bytes == sum(row["bytes"] for row in last.dropped)
    for row in last.dropped:
        assert f" omitted: {row['path']}, {row['bytes']} bytes\n" in last.memory.body
