"""Working-memory compaction: the text side.

A task's working notes (``working/{run_id}.md``, one per run) grow without bound; a
harness reads them on every claim. Once they pass the budget, the older ones are folded
into ``memory/{task_id}.md``. This package decides *what the folded text says*; the
service in ``corpus.services.compaction`` decides *which* notes to fold and stores the
result with what it kept and dropped.

``outline`` (``OutlineSummariser``, the default) is deterministic: the same notes and
budget always give byte-identical text, so a compaction can be replayed and checked. It
keeps content, not a skeleton: decisions, open items, what changed, files touched, then
the rest newest first, and it fills the budget before it drops anything; whatever it
drops is named in the memory (``omitted: working/run_….md, N bytes``) and in its
``Summary``. ``openai`` (``corpus.compaction.model``) asks an OpenAI-compatible
chat-completions endpoint instead (CONTRACT.md §7).
"""

from __future__ import annotations

from corpus.compaction.base import (
    MEMORY_TITLE,
    Summariser,
    SummariserFailed,
    Summary,
    WorkingNote,
    utf8_size,
    utf8_truncate,
)
from corpus.compaction.outline import OutlineSummariser
from corpus.compaction.parse import Block, note_blocks

__all__ = [
    "MEMORY_TITLE",
    "Block",
    "OutlineSummariser",
    "Summariser",
    "SummariserFailed",
    "Summary",
    "WorkingNote",
    "note_blocks",
    "utf8_size",
    "utf8_truncate",
]
