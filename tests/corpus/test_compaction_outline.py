"""Working-memory compaction: the outline summariser alone (pure; the flow through real
results: test_compaction.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from corpus.compaction import (
    OutlineSummariser,
    WorkingNote,
    note_blocks,
    utf8_size,
    utf8_truncate,
)

# --- the outline summariser (pure) -------------------------------------------------------

NOTE_A = """# Fix the flaky widget test

I looked at the fixture and the clock for a while; it is a long story.

## Decisions

- Freeze time with time_machine
  (explained at length below)
1. Keep the retry decorator out

Decided: no sleep() anywhere.

## Findings

The widget reads the wall clock twice per render.
We chose the fake clock over patching datetime.
- [ ] check the nightly job
- [x] reproduce locally
TODO: ask about the CI image
FIXME the teardown leaks a thread

## Open questions

Should the fixture be session-scoped?
- upgrade pytest first
- [x] settled already
Just a remark, no question.

```bash
# install the tools
pip install time-machine  # Decision inside code is not a decision line
```
"""

NOTE_B = """# Fix the flaky widget test

More narrative that nobody needs next time.

## Decisions

- Freeze time with time_machine
   Decided: no sleep() anywhere.\t\t
- Run the suite 100 times in CI

## Open questions

- [ ] check the nightly job
Is the undecided flag still used?
"""


def lines_of(text: str) -> list[str]:
    return text.split("\n")


def content_lines(body: str) -> list[str]:
    return [line.strip() for line in body.split("\n") if line.strip() and not line.startswith("#")]


def test_within_budget_every_line_of_every_note_is_kept():
    notes = [WorkingNote("working/run_a.md", NOTE_A), WorkingNote("working/run_b.md", NOTE_B)]
    summary = OutlineSummariser().summarise(notes, 100_000)
    out = summary.text
    for note_ in notes:
        for line in content_lines(note_.body):
            assert line in out, line
    assert "omitted:" not in out
    assert summary.dropped == [] and summary.dropped_bytes == 0
    # One section per kind across the notes, each note under its label, newest first; the
    # list at the top maps the labels to the raw notes.
    lines = lines_of(out)
    assert lines.count("## Decisions") == 1 and lines.count("## Open items") == 1
    assert lines.index("- r2 working/run_b.md") < lines.index("- r1 working/run_a.md")
    decisions = lines[lines.index("## Decisions") : lines.index("## Open items")]
    assert decisions.index("r2:") < decisions.index("r1:")
    assert "- Run the suite 100 times in CI" in decisions
    assert "- Freeze time with time_machine" in decisions


def test_a_block_repeated_by_a_later_note_is_written_once():
    notes = [WorkingNote("working/run_a.md", NOTE_A), WorkingNote("working/run_b.md", NOTE_B)]
    summary = OutlineSummariser().summarise(notes, 100_000)
    assert summary.text.count("- [ ] check the nightly job") == 1
    # The repeat's content is in the memory: it counts as kept, not dropped.
    total = sum(b.size for n in notes for b in note_blocks(n.body)[1])
    assert summary.kept_bytes == total


def test_block_kinds():
    kinds = {b.text.split("\n")[0].strip(): b.kind for b in note_blocks(NOTE_A)[1]}
    assert kinds["- Freeze time with time_machine"] == "decision"
    assert kinds["Decided: no sleep() anywhere."] == "decision"
    # One paragraph of two lines; "We chose" in its second line makes it a decision.
    assert kinds["The widget reads the wall clock twice per render."] == "decision"
    assert kinds["- [ ] check the nightly job"] == "open"
    assert kinds["TODO: ask about the CI image"] == "open"
    assert kinds["Should the fixture be session-scoped?"] == "open"
    assert kinds["- [x] settled already"] == "changed"
    assert kinds["```bash"] == "open"  # code sits in the "Open questions" section
    body = "## What changed\n\n- moved the check\n\n## Files touched\n\n- `a/b.py`\n"
    body += "\n## Log\n\n- orders/api.py: read it\n- looked around\n\nThe flag is undecided.\n"
    body += "\nThe flag `slow_mode` is on.\n\np95 was 120 ms.\n"
    kinds = {b.text: b.kind for b in note_blocks(body)[1]}
    assert kinds == {
        "- moved the check": "changed",
        "- `a/b.py`": "files",
        "- orders/api.py: read it": "files",
        "- looked around": "narrative",  # prose that names nothing concrete
        "The flag is undecided.": "narrative",
        "The flag `slow_mode` is on.": "rest",
        "p95 was 120 ms.": "rest",
    }


def test_a_hash_inside_code_is_no_heading_and_code_stays_whole():
    body = "## Notes\n\n```bash\n# install\npip install x\n```\n"
    headings, blocks = note_blocks(body)
    assert [h.text for h in headings] == ["## Notes"]
    assert [b.text for b in blocks] == ["```bash\n# install\npip install x\n```"]


def test_an_empty_section_keeps_its_heading_as_content():
    body = "# Run\n\n## Done: migrated the schema\n\n## Next\n\n- deploy\n"
    out = OutlineSummariser().summarise([WorkingNote("working/run_a.md", body)], 10_000).text
    # As a line of its own, not a heading: headings are the memory's own sections.
    assert "Done: migrated the schema" in lines_of(out)


def numbered_notes(count: int, items: int) -> list[WorkingNote]:
    return [
        WorkingNote(
            f"working/run_{n}.md",
            "\n".join(
                [
                    f"# Run {n}",
                    "## Decisions",
                    f"- decision {n}",
                    "## Open questions",
                    f"- [ ] open {n}",
                    "## What changed",
                    f"- changed {n}",
                    "## Log",
                    *(f"- narrative {n}.{i} " + "x" * 60 for i in range(items)),
                ]
            ),
        )
        for n in range(count)
    ]


def test_over_budget_keeps_decisions_and_open_items_and_the_newest_rest():
    notes = numbered_notes(6, 12)
    full = OutlineSummariser().summarise(notes, 100_000)
    budget = utf8_size(full.text) // 2
    summary = OutlineSummariser().summarise(notes, budget)
    out = summary.text
    assert utf8_size(out) <= budget
    for n in range(6):
        assert f"- decision {n}" in out and f"- [ ] open {n}" in out and f"- changed {n}" in out
    # The rest goes newest first: run 5's log is whole, run 0's is gone.
    assert all(f"- narrative 5.{i} " in out for i in range(12))
    assert "- narrative 0." not in out
    # It fills the budget: not one more log line would have fitted.
    assert budget - utf8_size(out) < 2 * 80
    # What was left out is named, in the memory and in the summary, and adds up.
    named = [line for line in lines_of(out) if " omitted: " in line]
    labels = {f"working/run_{n}.md": f"r{n + 1}" for n in range(6)}
    expected = [
        f"- {labels[row['path']]} omitted: {row['path']}, {row['bytes']} bytes"
        for row in summary.dropped
    ]
    assert named == list(reversed(expected))  # the list runs newest first
    assert summary.dropped[0]["path"] == "working/run_0.md"
    assert summary.dropped_bytes == sum(row["bytes"] for row in summary.dropped) > 0
    assert summary.kept_bytes + summary.dropped_bytes == full.kept_bytes


def test_issue_16_seven_notes_are_not_cut_to_headings():
    """The issue's case: seven ~2.5 KB notes of list items under "### Notes" came out as
    974 bytes of headings in an 8,192-byte budget. Now the budget is filled with them."""
    notes = [WorkingNote(f"working/run_{n:026d}.md", issue_note(n)) for n in range(7)]
    summary = OutlineSummariser().summarise(notes, 8192)
    size = utf8_size(summary.text)
    assert 8192 - 300 < size <= 8192
    assert summary.text.count("- Step ") > 40
    assert "CI is flaky on test_orders; rerun before merging." in summary.text
    assert summary.kept_bytes > 6500


def issue_note(n: int) -> str:
    lines = [f"## Run {n}: add rate limiting to the orders API", "", "### Notes", ""]
    i = 0
    while utf8_size("\n".join(lines)) < 2500:
        i += 1
        lines.append(
            f"- Step {n}.{i}: read `orders/api_{i}.py` and moved the throttle check before "
            "the serializer so a flood of requests costs no query; tests pass locally."
        )
    return "\n".join([*lines, "", "CI is flaky on test_orders; rerun before merging."])


@pytest.mark.parametrize("budget", [0, 1, 10, 60, 200, 333, 512, 1000, 4096])
def test_budget_is_respected_in_utf8_bytes_with_multibyte_text(budget):
    body = "\n".join(
        ["## Décisions — 决定", *(f"- 选择 {i}: naïve café ☕ 🚀 Ω≈ç√ ∂ƒ©" for i in range(40))]
    )
    notes = [WorkingNote(f"working/run_{n}.md", body + f"\n- [ ] 未完成 {n} 🧪") for n in range(3)]
    out = OutlineSummariser().summarise(notes, budget).text
    data = out.encode("utf-8")
    assert len(data) <= budget
    assert data.decode("utf-8") == out  # strict decode: no split character
    assert "\ufffd" not in out


def test_utf8_truncate_never_splits_a_character():
    text = "aé中🚀" * 10
    for limit in range(len(text.encode("utf-8")) + 2):
        cut = utf8_truncate(text, limit)
        assert len(cut.encode("utf-8")) <= limit
        assert text.startswith(cut)
        # As long as possible: one more character would not fit.
        if cut != text:
            assert utf8_size(text[: len(cut) + 1]) > limit


def test_outline_is_deterministic():
    notes = [WorkingNote("working/run_a.md", NOTE_A), WorkingNote("working/run_b.md", NOTE_B)]
    for budget in (100_000, 600, 300):
        first = OutlineSummariser().summarise(notes, budget)
        again = OutlineSummariser().summarise(list(notes), budget)
        assert first.text.encode("utf-8") == again.text.encode("utf-8")
        assert first == again


FRAGMENTS = st.sampled_from(
    [
        "# Title",
        "## Decisions",
        "## Open questions",
        "### Sub",
        "- item",
        "- [ ] open box",
        "- [x] done box",
        "- [x] open box, settled",
        "TODO: later",
        "Decided: yes",
        "We chose X",
        "Why not?",
        "```",
        "",
        "   ",
        "plain narrative",
        "émoji 🚀 中文",
    ]
)
LINES = st.one_of(FRAGMENTS, st.text(st.characters(codec="utf-8"), max_size=80))
NOTES = st.lists(st.lists(LINES, max_size=30).map("\n".join), min_size=0, max_size=6).map(
    lambda bodies: [WorkingNote(f"working/run_{i}.md", b) for i, b in enumerate(bodies)]
)


@hypothesis_settings(max_examples=300, deadline=None)
@given(notes=NOTES, budget=st.integers(min_value=0, max_value=3000))
def test_property_output_fits_budget_and_is_deterministic(notes, budget):
    summary = OutlineSummariser().summarise(notes, budget)
    out = summary.text
    data = out.encode("utf-8")
    assert len(data) <= budget
    assert data.decode("utf-8") == out
    assert OutlineSummariser().summarise(notes, budget) == summary
    unbounded = OutlineSummariser().summarise(notes, 10**9)
    assert summary.kept_bytes + summary.dropped_bytes == unbounded.kept_bytes
    # Either everything fits, or the text names what it left out (budget permitting).
    if utf8_size(unbounded.text) <= budget:
        assert summary == unbounded
        assert unbounded.dropped_bytes == 0
    elif unbounded.kept_bytes:
        assert summary.dropped_bytes > 0
        if budget >= 400 + 60 * len(summary.dropped):
            for row in summary.dropped:
                assert f" omitted: {row['path']}, {row['bytes']} bytes\n" in out
