"""Folding a task's older working notes into its compacted memory."""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.db import transaction

from accounts.models import Org
from api import metrics
from corpus.compaction import MEMORY_TITLE, OutlineSummariser, Summariser, WorkingNote
from corpus.models import Compaction, Document, DocumentKind
from corpus.services.documents import document_put


def _input_row(document: Document) -> dict[str, Any]:
    return {
        "doc_id": document.public_id,
        "path": document.path,
        "version": document.version,
        "bytes": document.size,
        "sha256": document.sha256,
    }


def split_working(raw: list[Document], budget_bytes: int) -> tuple[list[Document], list[Document]]:
    """(to fold, to keep raw) of a task's raw notes, oldest first.

    The newest notes that fit together in half the budget stay raw; everything older is
    folded, so the memory (the other half) and the raw notes fit the budget together.
    The raw ones are a run of the newest: a small old note never jumps the queue.
    """
    room = budget_bytes // 2
    keep = 0
    for document in reversed(raw):
        if document.size > room:
            break
        room -= document.size
        keep += 1
    cut = len(raw) - keep
    return raw[:cut], raw[cut:]


def memory_compact(
    *, org: Org, task_ref: str, summariser: Summariser | None = None
) -> Compaction | None:
    """Folds the task's older working notes into ``memory/{task_ref}.md`` once the raw
    notes together pass ``ETHER_WORKING_BUDGET_BYTES``.

    Returns ``None`` when nothing needs doing: the notes fit the budget, or the notes
    to fold are exactly those (same ids, versions and hashes) the latest compaction
    folded, so calling it again never stores a new version. The raw notes are never
    deleted: they stay readable by path and in the document history. Runs in one
    transaction (a savepoint inside the result's), so a failed write leaves no
    half-made memory.
    """
    summariser = summariser or OutlineSummariser()
    budget = settings.ETHER_WORKING_BUDGET_BYTES
    started = time.perf_counter()
    with transaction.atomic():
        raw = list(
            Document.objects.filter(org=org, kind=DocumentKind.WORKING, task_ref=task_ref).order_by(
                "created_at", "pk"
            )
        )
        if sum(d.size for d in raw) <= budget:
            return None
        folded, _ = split_working(raw, budget)
        inputs = [_input_row(d) for d in folded]
        last = (
            Compaction.objects.filter(org=org, task_ref=task_ref)
            .order_by("-created_at", "-pk")
            .first()
        )
        if last is not None and last.inputs == inputs:
            return None
        memory_budget = budget - budget // 2
        body = summariser.summarise(
            [WorkingNote(path=d.path, body=d.body) for d in folded], memory_budget
        )
        memory = document_put(
            org=org, kind=DocumentKind.MEMORY, task_ref=task_ref, title=MEMORY_TITLE, body=body
        )
        compaction = Compaction.objects.create(
            org=org,
            task_ref=task_ref,
            memory=memory,
            memory_version=memory.version,
            inputs=inputs,
            bytes_before=sum(row["bytes"] for row in inputs),
            bytes_after=memory.size,
            budget_bytes=memory_budget,
            summariser=summariser.name,
        )
        elapsed = time.perf_counter() - started
        metrics.count_on_commit(metrics.COMPACTIONS.inc)
        metrics.count_on_commit(lambda: metrics.COMPACTION_SECONDS.observe(elapsed))
        return compaction
