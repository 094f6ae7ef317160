"""Folding a task's older working notes into its compacted memory."""

from __future__ import annotations

import logging
import time
from typing import Any

from django.conf import settings
from django.db import transaction

from accounts.models import Org
from api import metrics
from api.background import after_commit
from corpus.compaction import (
    MEMORY_TITLE,
    OutlineSummariser,
    Summariser,
    SummariserFailed,
    Summary,
    WorkingNote,
)
from corpus.compaction.model import OpenAISummariser
from corpus.models import Compaction, Document, DocumentKind, DocumentVersion
from corpus.services.documents import document_put

log = logging.getLogger(__name__)


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

    The newest note always stays raw and whole, however big (CONTRACT.md §7: the next
    harness reads what the last run wrote, not a summary of it). Older notes stay raw
    while they fit beside it in half the budget; everything older is folded. The raw ones
    are a run of the newest: a small old note never jumps the queue.
    """
    if not raw:
        return [], []
    room = budget_bytes // 2 - raw[-1].size
    keep = 1
    for document in reversed(raw[:-1]):
        if document.size > room:
            break
        room -= document.size
        keep += 1
    cut = len(raw) - keep
    return raw[:cut], raw[cut:]


def _summarise(
    summariser: Summariser, notes: list[WorkingNote], budget: int
) -> tuple[Summariser, Summary, str]:
    """The summary, by ``summariser`` or, when it fails, by ``outline``; and why not."""
    try:
        summary = summariser.summarise(notes, budget)
    except SummariserFailed as exc:
        log.warning("summariser %s failed, falling back to outline: %s", summariser.name, exc)
        fallback = OutlineSummariser()
        return fallback, fallback.summarise(notes, budget), f"{summariser.name} failed: {exc}"
    return summariser, summary, ""


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
    half-made memory. The record says what the memory kept and dropped, and, when the
    chosen summariser failed, that ``outline`` wrote it instead and why (``fallback``).
    """
    # With ETHER_SUMMARISER=openai the outline writes the memory now and the model is
    # asked after commit (``model_compact``); an explicit summariser runs here.
    asked_model = summariser is None and configured_model() is not None
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
        folded, kept_raw = split_working(raw, budget)
        if not folded:
            return None  # only the newest note is over the budget: it stays whole
        inputs = [_input_row(d) for d in folded]
        last = (
            Compaction.objects.filter(org=org, task_ref=task_ref)
            .order_by("-created_at", "-pk")
            .first()
        )
        # The memory gets what the raw notes beside it leave (at least half the budget),
        # so the working slice as a whole uses the budget.
        memory_budget = budget - min(sum(d.size for d in kept_raw), budget // 2)
        if last is not None and last.inputs == inputs and last.bytes_after <= memory_budget:
            return None  # the same fold, and it still fits beside the raw notes
        notes = [WorkingNote(path=d.path, body=d.body) for d in folded]
        used, summary, fallback = _summarise(summariser, notes, memory_budget)
        memory = document_put(
            org=org,
            kind=DocumentKind.MEMORY,
            task_ref=task_ref,
            title=MEMORY_TITLE,
            body=summary.text,
        )
        ids = {d.path: d.public_id for d in folded}
        compaction = Compaction.objects.create(
            org=org,
            task_ref=task_ref,
            memory=memory,
            memory_version=memory.version,
            inputs=inputs,
            bytes_before=sum(row["bytes"] for row in inputs),
            bytes_after=memory.size,
            budget_bytes=memory_budget,
            summariser=used.name,
            kept_bytes=summary.kept_bytes,
            dropped_bytes=summary.dropped_bytes,
            dropped=[{"doc_id": ids.get(row["path"]), **row} for row in summary.dropped],
            fallback=fallback,
        )
        if asked_model:
            # The model is asked after commit, never under the result's write lock.
            after_commit(f"model-compaction-{compaction.pk}", model_compact, compaction.pk)
        elapsed = time.perf_counter() - started
        metrics.count_on_commit(metrics.COMPACTIONS.inc)
        metrics.count_on_commit(lambda: metrics.COMPACTION_SECONDS.observe(elapsed))
        return compaction


def configured_model() -> OpenAISummariser | None:
    """The model summariser ``ETHER_SUMMARISER=openai`` asks for, else None."""
    if settings.ETHER_SUMMARISER != "openai":
        return None
    return OpenAISummariser(
        url=settings.ETHER_SUMMARISER_URL,
        model=settings.ETHER_SUMMARISER_MODEL,
        api_key=settings.ETHER_SUMMARISER_API_KEY,
        timeout=settings.ETHER_SUMMARISER_TIMEOUT_SECONDS,
    )


def model_compact(compaction_pk: int) -> Compaction | None:
    """Asks the configured model to fold the same notes as the outline compaction
    ``compaction_pk`` and stores its memory as the next version, with a compaction of its
    own. On failure the outline memory stands and its compaction says why
    (``fallback``). Nothing is stored when a newer fold came meanwhile.

    Runs after the result's commit (``api.background``), with no transaction open while
    the model thinks. A crash meanwhile leaves the outline memory, a complete one.
    """
    model = configured_model()
    compaction = Compaction.objects.select_related("org").filter(pk=compaction_pk).first()
    if model is None or compaction is None:
        return None
    versions = {
        (v.document.public_id, v.version): v.body
        for v in DocumentVersion.objects.select_related("document").filter(
            document__public_id__in=[row["doc_id"] for row in compaction.inputs]
        )
    }
    notes = [
        WorkingNote(path=row["path"], body=versions.get((row["doc_id"], row["version"]), ""))
        for row in compaction.inputs
    ]
    try:
        summary = model.summarise(notes, compaction.budget_bytes)
    except SummariserFailed as exc:
        log.warning("model compaction of %s failed: %s", compaction.task_ref, exc)
        Compaction.objects.filter(pk=compaction.pk).update(
            fallback=f"{model.name} failed: {exc}; the outline memory stands"
        )
        return None
    with transaction.atomic():
        # The memory's row lock first: a fold writing it now waits, then writes on top.
        Document.objects.select_for_update().filter(pk=compaction.memory_id).first()
        latest = (
            Compaction.objects.filter(org=compaction.org, task_ref=compaction.task_ref)
            .order_by("-created_at", "-pk")
            .first()
        )
        if latest is None or latest.pk != compaction.pk:
            return None
        memory = document_put(
            org=compaction.org,
            kind=DocumentKind.MEMORY,
            task_ref=compaction.task_ref,
            title=MEMORY_TITLE,
            body=summary.text,
        )
        return Compaction.objects.create(
            org=compaction.org,
            task_ref=compaction.task_ref,
            memory=memory,
            memory_version=memory.version,
            inputs=compaction.inputs,
            bytes_before=compaction.bytes_before,
            bytes_after=memory.size,
            budget_bytes=compaction.budget_bytes,
            summariser=model.name,
            kept_bytes=summary.kept_bytes,
            dropped_bytes=summary.dropped_bytes,
            dropped=summary.dropped,
        )
