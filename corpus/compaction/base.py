"""What every summariser takes and gives back."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

MEMORY_TITLE = "Compacted working memory"


@dataclass(frozen=True)
class WorkingNote:
    """One raw working document as the summariser sees it: its path names the run."""

    path: str
    body: str


@dataclass(frozen=True)
class Summary:
    """The memory's text and an account of the inputs.

    ``kept_bytes``/``dropped_bytes`` are UTF-8 bytes of the inputs' content (blocks:
    paragraphs, list items, code, headings of empty sections; blank lines not counted)
    that the text carries / left out. ``dropped`` names each note that lost content:
    ``{"path", "bytes", "blocks"}``. A model's summary cannot be accounted line by line:
    its byte counts are ``None`` and ``dropped`` is empty.
    """

    text: str
    kept_bytes: int | None
    dropped_bytes: int | None
    dropped: list[dict[str, Any]] = field(default_factory=list)


class SummariserFailed(Exception):
    """The summariser could not produce a memory (a model that failed or answered badly);
    the service falls back to ``outline`` and records why."""


class Summariser(Protocol):
    """Folds working notes (oldest first) into markdown of at most ``budget_bytes``
    UTF-8 bytes. ``name`` is recorded with each compaction, for the replay pages."""

    name: str

    def summarise(self, inputs: list[WorkingNote], budget_bytes: int) -> Summary: ...


def utf8_size(text: str) -> int:
    return len(text.encode("utf-8"))


def utf8_truncate(text: str, max_bytes: int) -> str:
    """The longest prefix of ``text`` within ``max_bytes``, never splitting a character."""
    if max_bytes <= 0:
        return ""
    data = text.encode("utf-8")
    if len(data) <= max_bytes:
        return text
    # "ignore" drops only the partial character the byte cut left at the end.
    return data[:max_bytes].decode("utf-8", "ignore")
