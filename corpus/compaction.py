"""Working-memory compaction: the pure text side.

A task's working notes (``working/{run_id}.md``, one per run) grow without bound; a
harness reads them on every claim. Once they pass the budget, the older ones are folded
into ``memory/{task_id}.md``. This module decides *what the folded text says*; the
service in ``corpus.services.compaction`` decides *which* notes to fold and stores the
result.

The default ``OutlineSummariser`` is deterministic — the same notes and budget always
give byte-identical text — so a compaction can be replayed and checked. It keeps the
skeleton a later run needs (headings, decisions, open items) and drops the narrative.
A model-based summariser only has to satisfy ``Summariser`` to be plugged in instead.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import ClassVar, Protocol

MEMORY_TITLE = "Compacted working memory"


@dataclass(frozen=True)
class WorkingNote:
    """One raw working document as the summariser sees it: its path names the run."""

    path: str
    body: str


class Summariser(Protocol):
    """Folds working notes (oldest first) into markdown of at most ``budget_bytes``
    UTF-8 bytes. ``name`` is recorded with each compaction, for the replay pages."""

    name: ClassVar[str]

    def summarise(self, inputs: list[WorkingNote], budget_bytes: int) -> str: ...


# CommonMark allows up to three spaces before an ATX heading's hashes.
_HEADING = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?[ \t#]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d{1,9}[.)])\s+")
_UNCHECKED = re.compile(r"^\s*(?:[-*+]|\d{1,9}[.)])\s+\[ \]")
_CHECKED = re.compile(r"^\s*(?:[-*+]|\d{1,9}[.)])\s+\[[xX]\]")
# Word boundary at the front only, so "Decisions" matches but "undecided" does not.
_DECISION = re.compile(r"\b(?:decision|decided|we chose)", re.IGNORECASE)
_OPEN_MARKER = re.compile(r"^(?:todo\b|fixme\b|open question)", re.IGNORECASE)
_DECISION_SECTION = re.compile(r"decision", re.IGNORECASE)
_OPEN_SECTION = re.compile(r"\bopen\b", re.IGNORECASE)


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


def _is_kept(line: str, *, in_decisions: bool, in_open: bool) -> bool:
    text = line.strip()
    if not text:
        return False
    if _DECISION.search(text) or _UNCHECKED.match(line):
        return True
    item = _LIST_ITEM.match(line)
    # "- TODO: …" is as much an open item as "TODO: …".
    if _OPEN_MARKER.match(line[item.end() :] if item else text):
        return True
    if in_decisions and item:
        return True
    # Under an "Open …" heading, its questions and its list items are the open items;
    # a ticked box there is settled, not open.
    return in_open and (text.endswith("?") or item is not None) and not _CHECKED.match(line)


def outline_lines(body: str) -> Iterator[str]:
    """The lines of one note worth keeping: headings, decisions and open items.

    Sections nest by heading level, so a list under ``### Database`` inside
    ``## Decisions`` still counts as decisions. Fenced code is skipped whole: a ``#``
    comment in a shell snippet is not a heading.
    """
    # (level, in a decisions section, in an open section): flags already folded in from
    # the enclosing headings, so a body line costs no walk up the stack.
    stack: list[tuple[int, bool, bool]] = []
    fence = ""
    for raw in body.replace("\r\n", "\n").split("\n"):
        line = raw.rstrip()
        text = line.lstrip()
        if not text:
            continue
        if fence:
            if text.startswith(fence):
                fence = ""
            continue
        if text[0] in "`~":
            opening = _FENCE.match(line)
            if opening:
                fence = opening.group(1)
                continue
        heading = _HEADING.match(line) if text[0] == "#" else None
        if heading:
            level = len(heading.group(1))
            while stack and stack[-1][0] >= level:
                stack.pop()
            title = heading.group(2) or ""
            outer_decisions, outer_open = stack[-1][1:] if stack else (False, False)
            stack.append(
                (
                    level,
                    outer_decisions or _DECISION_SECTION.search(title) is not None,
                    outer_open or _OPEN_SECTION.search(title) is not None,
                )
            )
            yield text
            continue
        in_decisions, in_open = stack[-1][1:] if stack else (False, False)
        if _is_kept(line, in_decisions=in_decisions, in_open=in_open):
            yield line


@dataclass(frozen=True)
class _Line:
    note: int
    text: str
    size: int  # UTF-8 bytes including the newline that follows it


def _dropped_note(count: int, budget_bytes: int) -> str:
    noun = "line" if count == 1 else "lines"
    return f"_{count} older {noun} dropped to stay within {budget_bytes} bytes._\n"


class OutlineSummariser:
    """Keeps each note's headings, decisions and open items under a heading naming its
    run, drops lines already kept, and drops the oldest kept lines first when over budget.
    """

    name: ClassVar[str] = "outline-v1"

    def summarise(self, inputs: list[WorkingNote], budget_bytes: int) -> str:
        noun = "note" if len(inputs) == 1 else "notes"
        header = f"# {MEMORY_TITLE}\n\nFolded from {len(inputs)} working {noun}, oldest first.\n"
        run_headings: list[str] = []
        lines: list[_Line] = []
        seen: set[str] = set()
        for index, note in enumerate(inputs):
            run_headings.append(f"\n## {note.path}\n")
            # Headings are structure: "## Decisions" in every note must stay, or each
            # note's decisions would lose their section. Other lines are deduplicated
            # across all notes, since a later note often repeats an earlier one.
            note_headings: set[str] = set()
            for line in outline_lines(note.body):
                key = line.strip()
                is_heading = _HEADING.match(line) is not None
                if key in (note_headings if is_heading else seen):
                    continue
                (note_headings if is_heading else seen).add(key)
                lines.append(_Line(index, line, utf8_size(line) + 1))
        return _fit(header, run_headings, lines, budget_bytes)


def _fit(header: str, run_headings: Sequence[str], lines: list[_Line], budget_bytes: int) -> str:
    """Joins the kept lines, dropping the oldest first until the text fits the budget.

    After a drop the text starts at the note of the oldest surviving line, whose run
    heading is repeated so its remaining lines still say which run they came from.
    """
    heading_sizes = [utf8_size(h) for h in run_headings]
    header_size = utf8_size(header)
    if header_size + sum(heading_sizes) + sum(line.size for line in lines) <= budget_bytes:
        return _render(header, run_headings, lines, first_note=0, dropped=0, budget_bytes=0)

    # Suffix sums keep the search for the fewest lines to drop linear in the line count.
    n, notes = len(lines), len(run_headings)
    heading_tail = [0] * (notes + 1)
    for i in range(notes - 1, -1, -1):
        heading_tail[i] = heading_tail[i + 1] + heading_sizes[i]
    line_tail = [0] * (n + 1)
    for k in range(n - 1, -1, -1):
        line_tail[k] = line_tail[k + 1] + lines[k].size
    for k in range(1, n + 1):
        first_note = lines[k].note if k < n else notes
        trailer = 1 + utf8_size(_dropped_note(k, budget_bytes))
        if header_size + heading_tail[first_note] + line_tail[k] + trailer <= budget_bytes:
            return _render(
                header,
                run_headings,
                lines[k:],
                first_note=first_note,
                dropped=k,
                budget_bytes=budget_bytes,
            )
    # Not even the header and the note fit: the budget is tiny. Still never exceed it.
    return utf8_truncate(header + "\n" + _dropped_note(n, budget_bytes), budget_bytes)


def _render(
    header: str,
    run_headings: Sequence[str],
    lines: Sequence[_Line],
    *,
    first_note: int,
    dropped: int,
    budget_bytes: int,
) -> str:
    by_note: dict[int, list[str]] = {}
    for line in lines:
        by_note.setdefault(line.note, []).append(line.text)
    parts = [header]
    for index in range(first_note, len(run_headings)):
        parts.append(run_headings[index])
        parts.extend(text + "\n" for text in by_note.get(index, []))
    if dropped:
        parts.append("\n" + _dropped_note(dropped, budget_bytes))
    return "".join(parts)
