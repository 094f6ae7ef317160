"""A task's context in one call (docs/contract.md §6): whole documents in priority order
until the byte budget is spent, the rest named with the reason it was left out.

Priority: the task document, the compacted working memory, the working notes newest
first, then the repository's, the project's and the owner's profile documents. The budget
counts UTF-8 bytes of the bodies. A document that does not fit is never cut: it is listed
in ``omitted`` and packing goes on with the next one, so a small lower-priority document
still gets in after a large one did not (the budget is a cap, the order who goes first).
Raw notes the memory already covers are omitted as ``folded_into_memory``: their content
is in the memory, and sending both would spend the budget twice.

Everything is read in a fixed number of queries, whatever the size of the task's history.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from corpus.models import Document, DocumentKind
from corpus.selectors import TaskScope, folded_doc_ids, scope_queryset

# The kinds in the order they are packed; working notes sort newest first among themselves.
PRIORITY = (
    DocumentKind.TASK,
    DocumentKind.MEMORY,
    DocumentKind.WORKING,
    DocumentKind.REPO,
    DocumentKind.PROJECT,
    DocumentKind.PROFILE,
)

OVER_BUDGET = "over_budget"
FOLDED = "folded_into_memory"


@dataclass(frozen=True)
class PackedDoc:
    document: Document
    changed_since_last_run: bool


@dataclass(frozen=True)
class Omitted:
    document: Document
    reason: str


@dataclass
class Pack:
    budget_bytes: int
    used_bytes: int = 0
    docs: list[PackedDoc] = field(default_factory=list)
    omitted: list[Omitted] = field(default_factory=list)


def _priority(document: Document) -> tuple[int, float, int]:
    rank = PRIORITY.index(document.kind)
    if document.kind == DocumentKind.WORKING:
        # Newest first: the latest run's notes are what the next run needs most.
        return rank, -document.created_at.timestamp(), -document.pk
    return rank, 0.0, document.pk


def context_pack(scope: TaskScope, *, budget_bytes: int, last_run_at: datetime | None) -> Pack:
    """Packs the scope's documents into ``budget_bytes``.

    ``last_run_at``: when the task's previous run began (it read its context then); a
    document written after it, or every document when there was no previous run, is
    ``changed_since_last_run``.
    """
    documents = sorted(scope_queryset(scope), key=_priority)
    folded = folded_doc_ids(scope)
    pack = Pack(budget_bytes=budget_bytes)
    for document in documents:
        if document.kind == DocumentKind.WORKING and document.public_id in folded:
            pack.omitted.append(Omitted(document, FOLDED))
            continue
        if pack.used_bytes + document.size > budget_bytes:
            pack.omitted.append(Omitted(document, OVER_BUDGET))
            continue
        pack.used_bytes += document.size
        changed = last_run_at is None or document.updated_at > last_run_at
        pack.docs.append(PackedDoc(document, changed))
    return pack
