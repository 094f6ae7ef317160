"""Working-memory compaction: the flow through real results (the outline summariser alone:
test_compaction_outline.py)."""

from __future__ import annotations

import itertools
from typing import ClassVar

import pytest

from corpus.compaction import (
    OutlineSummariser,
    Summary,
    WorkingNote,
    utf8_size,
)
from corpus.models import Compaction, Document, DocumentKind, DocumentVersion
from corpus.services import memory_compact

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
