"""Working-memory compaction: the outline summariser, and the flow through real results."""

from __future__ import annotations

import itertools
from typing import ClassVar

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from corpus.compaction import (
    OutlineSummariser,
    Summary,
    WorkingNote,
    note_blocks,
    utf8_size,
    utf8_truncate,
)
from corpus.models import Compaction, Document, DocumentKind, DocumentVersion
from corpus.services import memory_compact

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


# --- the service, through the real API flow ----------------------------------------------

BUDGET = 2048
HALF = BUDGET - BUDGET // 2


def note(n: int, filler: int = 420) -> str:
    """About 600 bytes: a skeleton worth keeping, narrative worth dropping, a repeat."""
    return "\n".join(
        [
            f"# Run {n}",
            "",
            f"narrative {n} " * (filler // 12),
            "",
            "## Decisions",
            f"- choice {n}: use fixture {n}",
            "Decided: keep the shared fixture",
            "",
            "## Open questions",
            f"- [ ] follow up {n}",
            "",
        ]
    )


@pytest.fixture
def small_budget(settings):
    settings.ETHER_WORKING_BUDGET_BYTES = BUDGET
    return BUDGET


def run_once(world, task, summary: str, *, reopen: bool = True) -> str:
    """One attempt: claim, a no_changes result with a working summary, then reopen."""
    harness = world.harness()
    claim = harness.claim(task.public_id)
    assert claim.status_code == 200, claim.content
    run_id = claim.json()["run_id"]
    result = harness.result(task.public_id, run_id, "no_changes", working_summary=summary)
    assert result.status_code == 200, result.content
    if reopen:
        response = world.person().post(f"/api/tasks/{task.public_id}/reopen")
        assert response.status_code == 200, response.content
    return run_id


def raw_docs(task) -> list[Document]:
    return list(
        Document.objects.filter(kind=DocumentKind.WORKING, task_ref=task.public_id).order_by(
            "created_at", "pk"
        )
    )


def memory_of(task) -> Document | None:
    return Document.objects.filter(kind=DocumentKind.MEMORY, task_ref=task.public_id).first()


def working_slice(world, task) -> list[dict]:
    response = world.harness().get(f"/api/harness/context?task_id={task.public_id}&slices=working")
    assert response.status_code == 200, response.content
    (only,) = response.json()["slices"]
    assert only["name"] == "working"
    return only["docs"]


def test_notes_within_budget_are_not_compacted(world, task, small_budget):
    runs = [run_once(world, task, note(n)) for n in range(3)]
    assert sum(d.size for d in raw_docs(task)) <= BUDGET
    assert memory_of(task) is None
    assert not Compaction.objects.exists()
    listed = [d["path"] for d in working_slice(world, task)]
    assert listed == [f"working/{r}.md" for r in reversed(runs)]


def test_passing_the_budget_folds_the_oldest_notes_into_memory(world, task, small_budget):
    runs = [run_once(world, task, note(n)) for n in range(4)]
    raw = raw_docs(task)
    assert [d.run_ref for d in raw] == runs  # never deleted
    assert sum(d.size for d in raw) > BUDGET

    memory = memory_of(task)
    assert memory is not None
    assert memory.path == f"memory/{task.public_id}.md"
    assert memory.title == "Compacted working memory"
    assert memory.size + raw[-1].size <= BUDGET
    assert memory.version == 1

    (compaction,) = Compaction.objects.all()
    folded = raw[:3]  # two ~600-byte notes do not fit in half of 2048: only the newest stays
    assert compaction.inputs == [
        {
            "doc_id": d.public_id,
            "path": d.path,
            "version": d.version,
            "bytes": d.size,
            "sha256": d.sha256,
        }
        for d in folded
    ]
    assert compaction.org == world.org
    assert compaction.task_ref == task.public_id
    assert compaction.memory == memory
    assert compaction.memory_version == memory.version
    assert compaction.bytes_before == sum(d.size for d in folded)
    assert compaction.bytes_after == memory.size
    assert compaction.bytes_after < compaction.bytes_before
    assert compaction.budget_bytes == BUDGET - raw[-1].size  # what the raw note leaves
    assert compaction.summariser == OutlineSummariser.name == "outline-v3"
    assert compaction.fallback == ""

    body = memory.body
    for n in range(3):
        assert f"- r{n + 1} working/{runs[n]}.md" in body or (
            f"- r{n + 1} omitted: working/{runs[n]}.md" in body
        )
        assert f"- choice {n}: use fixture {n}" in body
        assert f"- [ ] follow up {n}" in body
    assert body.count("Decided: keep the shared fixture") == 1
    assert runs[3] not in body
    # Deterministic: the stored memory is exactly what the summariser says for the inputs.
    again = OutlineSummariser().summarise(
        [WorkingNote(d.path, d.body) for d in folded], BUDGET - raw[-1].size
    )
    assert again.text.encode("utf-8") == body.encode("utf-8")
    # The narrative did not fit: the record and the memory say exactly what was left out.
    assert compaction.kept_bytes == again.kept_bytes > 0
    assert compaction.dropped_bytes == again.dropped_bytes > 0
    by_path = {d.path: d.public_id for d in folded}
    assert compaction.dropped == [{"doc_id": by_path[row["path"]], **row} for row in again.dropped]
    for row in compaction.dropped:
        assert f" omitted: {row['path']}, {row['bytes']} bytes\n" in body


def test_working_slice_lists_memory_first_then_raw_notes_that_fit(world, task, small_budget):
    runs = [run_once(world, task, note(n)) for n in range(4)]
    docs = working_slice(world, task)
    memory = memory_of(task)
    assert docs[0]["id"] == memory.public_id
    assert docs[0]["path"] == f"memory/{task.public_id}.md"
    assert [d["path"] for d in docs[1:]] == [f"working/{runs[3]}.md"]
    assert sum(d["bytes"] for d in docs) <= BUDGET
    # The next claim's bundle points at the same documents.
    claim = world.harness().claim(task.public_id)
    assert claim.status_code == 200, claim.content
    doc_ids = claim.json()["bundle"]["context"]["doc_ids"]
    assert memory.public_id in doc_ids
    folded = {row["doc_id"] for row in Compaction.objects.get().inputs}
    assert not folded & set(doc_ids)
    # Folded notes are still readable by path.
    old = world.harness().get(
        f"/api/harness/context/doc/working/{runs[0]}.md?task_id={task.public_id}"
    )
    assert old.status_code == 200
    assert old.content.decode() == raw_docs(task)[0].body
    assert "narrative" in old.content.decode()


def test_same_inputs_make_no_new_version(world, task, small_budget):
    for n in range(4):
        run_once(world, task, note(n))
    memory = memory_of(task)
    versions = DocumentVersion.objects.filter(document=memory).count()

    # Calling it again with nothing new folds nothing.
    assert memory_compact(org=world.org, task_ref=task.public_id) is None
    # A small new note fits beside the newest raw one: the folded set is unchanged.
    run_once(world, task, "## Decisions\n- tiny\n")
    assert Compaction.objects.count() == 1
    memory.refresh_from_db()
    assert memory.version == 1
    assert DocumentVersion.objects.filter(document=memory).count() == versions
    assert len(raw_docs(task)) == 5
    listed = working_slice(world, task)
    assert len(listed) == 3  # memory, the tiny note, then the newest full one


def test_later_runs_fold_more_and_keep_every_raw_note(world, task, small_budget):
    runs = [run_once(world, task, note(n)) for n in range(7)]
    assert [d.run_ref for d in raw_docs(task)] == runs
    compactions = list(Compaction.objects.order_by("pk"))
    assert len(compactions) == 4  # after runs 4, 5, 6 and 7
    folded_counts = [len(c.inputs) for c in compactions]
    assert folded_counts == [3, 4, 5, 6]
    for earlier, later in itertools.pairwise(compactions):
        assert later.inputs[: len(earlier.inputs)] == earlier.inputs
    memory = memory_of(task)
    assert memory.version == 4
    assert [c.memory_version for c in compactions] == [1, 2, 3, 4]
    assert memory.size + raw_docs(task)[-1].size <= BUDGET
    assert all(c.bytes_after <= c.budget_bytes for c in compactions)
    docs = working_slice(world, task)
    assert [d["path"] for d in docs] == [memory.path, f"working/{runs[-1]}.md"]


def test_many_runs_keep_decisions_and_name_what_they_dropped(world, task, settings):
    settings.ETHER_WORKING_BUDGET_BYTES = 8192
    runs = [run_once(world, task, note(n, filler=300)) for n in range(20)]
    memory = memory_of(task)
    compaction = Compaction.objects.last()
    assert memory.size <= 4096
    folded = len(compaction.inputs)
    assert folded > 10
    # Every folded run's decisions and open items are in; narrative was dropped, and named.
    for n in range(folded):
        assert f"- choice {n}: use fixture {n}" in memory.body
        assert f"- [ ] follow up {n}" in memory.body
    assert compaction.dropped_bytes > 0
    assert memory.body.count(" omitted: working/") == len(compaction.dropped)
    docs = working_slice(world, task)
    assert docs[0]["id"] == memory.public_id
    assert docs[1]["path"] == f"working/{runs[-1]}.md"
    assert len(raw_docs(task)) == 20


def test_one_note_over_the_budget_stays_whole_and_raw(world, task, small_budget):
    run_id = run_once(world, task, note(0, filler=3000), reopen=False)
    assert memory_of(task) is None
    assert not Compaction.objects.exists()
    (doc,) = working_slice(world, task)
    assert doc["path"] == f"working/{run_id}.md"
    assert doc["bytes"] > BUDGET


def test_the_newest_note_stays_whole_beside_the_memory(world, task, small_budget):
    runs = [run_once(world, task, note(n)) for n in range(3)]
    big = run_once(world, task, note(9, filler=1500))
    memory = memory_of(task)
    assert memory is not None
    folded = [row["path"] for row in Compaction.objects.last().inputs]
    assert folded == [f"working/{r}.md" for r in runs]
    docs = working_slice(world, task)
    assert [d["path"] for d in docs] == [memory.path, f"working/{big}.md"]
    assert docs[1]["bytes"] == raw_docs(task)[-1].size > HALF


def test_without_memory_the_newest_note_is_listed_even_over_budget(world, task, settings):
    # Notes written under a larger budget, read after it was lowered: no compaction ran.
    settings.ETHER_WORKING_BUDGET_BYTES = 100_000
    runs = [run_once(world, task, note(n)) for n in range(3)]
    settings.ETHER_WORKING_BUDGET_BYTES = 300
    assert [d["path"] for d in working_slice(world, task)] == [f"working/{runs[-1]}.md"]


def test_compaction_stays_within_its_task(world, small_budget):
    mine, other = world.task(), world.task(title="Another")
    for n in range(2):
        run_once(world, other, note(n))
    for n in range(4):
        run_once(world, mine, note(n))
    assert memory_of(other) is None
    (compaction,) = Compaction.objects.all()
    assert compaction.task_ref == mine.public_id
    assert {row["doc_id"] for row in compaction.inputs} <= {d.public_id for d in raw_docs(mine)}
    assert len(working_slice(world, other)) == 2


class Counting:
    """A stand-in model summariser: anything with a name and summarise() plugs in."""

    name: ClassVar[str] = "counting-test"

    def summarise(self, inputs: list[WorkingNote], budget_bytes: int) -> Summary:
        return Summary(f"{len(inputs)} notes within {budget_bytes} bytes\n", None, None)


def test_another_summariser_plugs_in(world, task, settings):
    settings.ETHER_WORKING_BUDGET_BYTES = 100_000
    for n in range(4):
        run_once(world, task, note(n))
    assert memory_of(task) is None
    settings.ETHER_WORKING_BUDGET_BYTES = BUDGET
    compaction = memory_compact(org=world.org, task_ref=task.public_id, summariser=Counting())
    assert compaction is not None
    assert compaction.summariser == "counting-test"
    assert memory_of(task).body == f"3 notes within {BUDGET - raw_docs(task)[-1].size} bytes\n"
    assert compaction.bytes_after == utf8_size(memory_of(task).body)
