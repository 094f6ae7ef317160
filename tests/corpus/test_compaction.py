"""Working-memory compaction: the outline summariser, and the flow through real results."""

from __future__ import annotations

import itertools
from typing import ClassVar

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from corpus.compaction import OutlineSummariser, WorkingNote, utf8_size, utf8_truncate
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


def test_outline_keeps_headings_decisions_and_open_items():
    out = OutlineSummariser().summarise([WorkingNote("working/run_a.md", NOTE_A)], 100_000)
    lines = lines_of(out)
    for kept in [
        "## working/run_a.md",
        "# Fix the flaky widget test",
        "## Decisions",
        "- Freeze time with time_machine",
        "1. Keep the retry decorator out",
        "Decided: no sleep() anywhere.",
        "## Findings",
        "We chose the fake clock over patching datetime.",
        "- [ ] check the nightly job",
        "TODO: ask about the CI image",
        "FIXME the teardown leaks a thread",
        "## Open questions",
        "Should the fixture be session-scoped?",
        "- upgrade pytest first",
    ]:
        assert kept in lines, kept


def test_outline_drops_narrative_done_items_and_code():
    out = OutlineSummariser().summarise([WorkingNote("working/run_a.md", NOTE_A)], 100_000)
    for dropped in [
        "long story",
        "wall clock",
        "explained at length",
        "reproduce locally",
        "settled already",
        "Just a remark",
        "install the tools",
        "pip install",
    ]:
        assert dropped not in out, dropped


def test_outline_removes_repeated_lines_but_keeps_each_notes_headings():
    notes = [WorkingNote("working/run_a.md", NOTE_A), WorkingNote("working/run_b.md", NOTE_B)]
    lines = lines_of(OutlineSummariser().summarise(notes, 100_000))
    # Compared stripped: the indented copy in NOTE_B is the same line.
    assert sum("Decided: no sleep() anywhere." in line for line in lines) == 1
    assert lines.count("- Freeze time with time_machine") == 1
    assert lines.count("- [ ] check the nightly job") == 1
    # Each note keeps its own skeleton, so its new lines sit under their heading.
    assert lines.count("## Decisions") == 2
    assert lines.count("## Open questions") == 2
    b = lines.index("## working/run_b.md")
    assert lines.index("- Run the suite 100 times in CI", b) > lines.index("## Decisions", b)
    assert "Is the undecided flag still used?" in lines  # a question under "Open"
    assert lines.index("## working/run_a.md") < b  # oldest first


def test_undecided_is_not_a_decision():
    note = WorkingNote("working/run_a.md", "# Notes\n\nThe flag is undecided for now.\n")
    assert "undecided" not in OutlineSummariser().summarise([note], 10_000)


def test_nested_heading_under_decisions_keeps_its_list():
    body = "## Decisions\n\n### Database\n\n- Postgres in CI\n\n## Other\n\n- not kept\n"
    out = OutlineSummariser().summarise([WorkingNote("working/run_a.md", body)], 10_000)
    assert "- Postgres in CI" in lines_of(out)
    assert "- not kept" not in out


def test_within_budget_has_no_drop_note_and_names_every_run():
    notes = [WorkingNote(f"working/run_{i}.md", "narrative only\n") for i in range(3)]
    out = OutlineSummariser().summarise(notes, 10_000)
    assert "dropped" not in out
    assert [line for line in lines_of(out) if line.startswith("## ")] == [
        "## working/run_0.md",
        "## working/run_1.md",
        "## working/run_2.md",
    ]
    assert "Folded from 3 working notes, oldest first." in out


def numbered_notes(count: int, items: int) -> list[WorkingNote]:
    return [
        WorkingNote(
            f"working/run_{n}.md",
            "\n".join(["## Decisions", *(f"- decision {n}.{i}" for i in range(items))]),
        )
        for n in range(count)
    ]


def test_over_budget_drops_the_oldest_lines_first_and_says_how_many():
    notes = numbered_notes(4, 20)
    full = OutlineSummariser().summarise(notes, 100_000)
    budget = utf8_size(full) // 2
    out = OutlineSummariser().summarise(notes, budget)
    assert utf8_size(out) <= budget
    kept = [line for line in lines_of(out) if line.startswith("- decision")]
    everything = [line for line in lines_of(full) if line.startswith("- decision")]
    # What survives is exactly the newest kept lines, in order.
    assert kept == everything[len(everything) - len(kept) :]
    assert "- decision 3.19" in kept and "- decision 0.0" not in kept
    # Dropped lines count the notes' own headings too, not the run headings.
    headings_dropped = lines_of(full).count("## Decisions") - lines_of(out).count("## Decisions")
    dropped = len(everything) - len(kept) + headings_dropped
    assert lines_of(out)[-2] == f"_{dropped} older lines dropped to stay within {budget} bytes._"
    # The note whose lines were partly dropped keeps its run heading.
    first_kept_note = kept[0].split()[2].split(".")[0]
    assert f"## working/run_{first_kept_note}.md" in lines_of(out)
    assert "## working/run_0.md" not in out


@pytest.mark.parametrize("budget", [0, 1, 10, 60, 200, 333, 512, 1000, 4096])
def test_budget_is_respected_in_utf8_bytes_with_multibyte_text(budget):
    body = "\n".join(
        ["## Décisions — 决定", *(f"- 选择 {i}: naïve café ☕ 🚀 Ω≈ç√ ∂ƒ©" for i in range(40))]
    )
    notes = [WorkingNote(f"working/run_{n}.md", body + f"\n- [ ] 未完成 {n} 🧪") for n in range(3)]
    out = OutlineSummariser().summarise(notes, budget)
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
        assert first.encode("utf-8") == again.encode("utf-8")


FRAGMENTS = st.sampled_from(
    [
        "# Title",
        "## Decisions",
        "## Open questions",
        "### Sub",
        "- item",
        "- [ ] open box",
        "- [x] done box",
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
    out = OutlineSummariser().summarise(notes, budget)
    data = out.encode("utf-8")
    assert len(data) <= budget
    assert data.decode("utf-8") == out
    assert OutlineSummariser().summarise(notes, budget) == out
    unbounded = OutlineSummariser().summarise(notes, 10**9)
    # Either everything fits, or the text says lines were dropped (budget permitting).
    if utf8_size(unbounded) <= budget:
        assert out == unbounded
    elif budget >= 200:
        assert "older line" in out


# --- the service, through the real API flow ----------------------------------------------

BUDGET = 2048
HALF = BUDGET - BUDGET // 2


def note(n: int, filler: int = 420) -> str:
    """About 600 bytes: a skeleton worth keeping, narrative worth dropping, a repeat."""
    return "\n".join(
        [
            f"# Run {n}",
            "",
            "narrative " * (filler // 10),
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
    assert memory.size <= HALF
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
    assert compaction.budget_bytes == HALF
    assert compaction.summariser == "outline-v1"

    body = memory.body
    for n in range(3):
        assert f"## working/{runs[n]}.md" in body
        assert f"- choice {n}: use fixture {n}" in body
        assert f"- [ ] follow up {n}" in body
    assert body.count("Decided: keep the shared fixture") == 1
    assert "narrative" not in body
    assert runs[3] not in body
    # Deterministic: the stored memory is exactly what the summariser says for the inputs.
    again = OutlineSummariser().summarise([WorkingNote(d.path, d.body) for d in folded], HALF)
    assert again.encode("utf-8") == body.encode("utf-8")


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
    assert memory.size <= HALF
    assert all(c.bytes_after <= c.budget_bytes for c in compactions)
    docs = working_slice(world, task)
    assert [d["path"] for d in docs] == [memory.path, f"working/{runs[-1]}.md"]


def test_many_runs_keep_memory_within_budget_by_dropping_the_oldest(world, task, small_budget):
    runs = [run_once(world, task, note(n, filler=100)) for n in range(20)]
    memory = memory_of(task)
    assert memory.size <= HALF
    assert "older lines dropped" in memory.body
    assert f"- choice {len(Compaction.objects.last().inputs) - 1}:" in memory.body
    assert "- choice 0:" not in memory.body
    docs = working_slice(world, task)
    assert docs[0]["id"] == memory.public_id
    assert sum(d["bytes"] for d in docs) <= BUDGET
    assert docs[1]["path"] == f"working/{runs[-1]}.md"
    assert len(raw_docs(task)) == 20


def test_one_note_over_the_budget_is_folded_whole(world, task, small_budget):
    run_id = run_once(world, task, note(0, filler=3000), reopen=False)
    memory = memory_of(task)
    assert memory.size <= HALF
    (compaction,) = Compaction.objects.all()
    assert [row["path"] for row in compaction.inputs] == [f"working/{run_id}.md"]
    assert [d["id"] for d in working_slice(world, task)] == [memory.public_id]
    assert Document.objects.filter(kind=DocumentKind.WORKING, run_ref=run_id).exists()


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

    def summarise(self, inputs: list[WorkingNote], budget_bytes: int) -> str:
        return f"{len(inputs)} notes within {budget_bytes} bytes\n"


def test_another_summariser_plugs_in(world, task, settings):
    settings.ETHER_WORKING_BUDGET_BYTES = 100_000
    for n in range(4):
        run_once(world, task, note(n))
    assert memory_of(task) is None
    settings.ETHER_WORKING_BUDGET_BYTES = BUDGET
    compaction = memory_compact(org=world.org, task_ref=task.public_id, summariser=Counting())
    assert compaction is not None
    assert compaction.summariser == "counting-test"
    assert memory_of(task).body == f"3 notes within {HALF} bytes\n"
    assert compaction.bytes_after == utf8_size(memory_of(task).body)
