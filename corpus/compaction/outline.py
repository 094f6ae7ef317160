"""The deterministic ``outline`` summariser: keeps content, fills the budget, says what
it left out."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import ClassVar

from corpus.compaction.base import MEMORY_TITLE, Summary, WorkingNote, utf8_size, utf8_truncate
from corpus.compaction.parse import KINDS, Block, Heading, note_blocks

_RANK = {kind: rank for rank, kind in enumerate(KINDS)}
_HASHES = re.compile(r"^(#{1,6})")
OMITTED_HEADING = "## Omitted"
# Within one kind, short blocks (a list item, a sentence or two) go before long ones, each
# newest note first: one long paragraph must not crowd out several decisions.
LONG_BLOCK_BYTES = 280
# Passes over the blocks refused so far; each later one only picks up what the shrinking
# list of omissions made room for, so more rarely finds anything.
MAX_PASSES = 4


def _demoted(heading: Heading) -> str:
    """A note's own heading two levels down, under the ``## path`` of its run."""
    return _HASHES.sub("#" * min(6, heading.level + 2), heading.text, count=1)


def _block_text(block: Block) -> str:
    if block.heading_level:
        return _HASHES.sub("#" * min(6, block.heading_level + 2), block.text, count=1)
    return block.text


def _element(text: str) -> int:
    """Bytes of one rendered element: a blank line, the text, a newline."""
    return utf8_size(text) + 2


@dataclass
class _Note:
    path: str
    headings: list[Heading]
    blocks: list[Block]
    heading_costs: list[int] = field(default_factory=list)  # rendered bytes of each heading
    started: bool = False
    shown_headings: set[int] = field(default_factory=set)
    dropped: int = 0  # content bytes not (yet) kept
    dropped_blocks: int = 0


@dataclass
class _Plan:
    """What is kept so far and what the text costs, kept exact as blocks are added."""

    notes: list[_Note]
    budget: int
    header: str
    used: int = 0
    shown: set[tuple[int, int]] = field(default_factory=set)  # (note, order) rendered
    kept_keys: set[str] = field(default_factory=set)
    kept: set[tuple[int, int]] = field(default_factory=set)  # (note, order) whose content is in
    lines: int = 0  # notes with content dropped: one omission line each
    lines_size: int = 0

    def __post_init__(self) -> None:
        self.header_size = utf8_size(self.header)
        self.intro_size = utf8_size(self.trailer_intro())
        for note in self.notes:
            note.heading_costs = [_element(_demoted(h)) for h in note.headings]
        self.start()

    def trailer_intro(self) -> str:
        return f"\n{OMITTED_HEADING}\n\nOver {self.budget} bytes; the raw notes stay readable:\n\n"

    @staticmethod
    def omitted_line(path: str, dropped: int) -> str:
        return f"- omitted: {path}, {dropped} bytes\n"

    def line_size(self, note: _Note, dropped: int) -> int:
        return utf8_size(self.omitted_line(note.path, dropped)) if dropped else 0

    def trailer_size(self) -> int:
        if not self.lines:
            return 0
        return self.intro_size + self.lines_size

    def start(self) -> None:
        """Counts the omission lines of the notes as they stand (everything dropped)."""
        self.lines = sum(1 for n in self.notes if n.dropped)
        self.lines_size = sum(self.line_size(n, n.dropped) for n in self.notes)

    def cost(self, index: int, block: Block) -> int:
        note = self.notes[index]
        cost = 0 if note.started else _element(f"## {note.path}")
        cost += sum(note.heading_costs[h] for h in block.headings if h not in note.shown_headings)
        return cost + _element(_block_text(block))

    def trailer_after(self, index: int, block: Block) -> int:
        """The trailer's size once ``block`` is kept (kept in step, not recounted)."""
        note = self.notes[index]
        lines = self.lines - (1 if note.dropped and note.dropped == block.size else 0)
        if not lines:
            return 0
        change = self.line_size(note, note.dropped - block.size) - self.line_size(
            note, note.dropped
        )
        return self.intro_size + self.lines_size + change

    def try_keep(self, index: int, block: Block, *, force: bool = False) -> bool:
        note = self.notes[index]
        if block.key in self.kept_keys:
            pass  # the same text is already in the memory: keeping it costs nothing
        else:
            cost = self.cost(index, block)
            trailer = self.trailer_after(index, block)
            if not force and self.header_size + self.used + cost + trailer > self.budget:
                return False
            self.used += cost
            note.started = True
            note.shown_headings.update(block.headings)
            self.shown.add((index, block.order))
            self.kept_keys.add(block.key)
        self.lines_size -= self.line_size(note, note.dropped)
        note.dropped -= block.size
        self.lines_size += self.line_size(note, note.dropped)
        self.lines -= 0 if note.dropped else 1
        note.dropped_blocks -= 1
        self.kept.add((index, block.order))
        return True


class OutlineSummariser:
    """Keeps every block while the budget has room; past it, keeps decisions, open
    items, what changed, files touched, then the rest, then narrative: within each kind
    short blocks before long ones, newest note first. Names each note that lost content
    with the bytes it lost."""

    name: ClassVar[str] = "outline-v2"

    def summarise(self, inputs: list[WorkingNote], budget_bytes: int) -> Summary:
        noun = "note" if len(inputs) == 1 else "notes"
        header = f"# {MEMORY_TITLE}\n\nFolded from {len(inputs)} working {noun}, oldest first.\n"
        notes = []
        for note in inputs:
            headings, blocks = note_blocks(note.body)
            size = sum(b.size for b in blocks)
            notes.append(
                _Note(note.path, headings, blocks, dropped=size, dropped_blocks=len(blocks))
            )
        candidates = sorted(
            ((i, b) for i, n in enumerate(notes) for b in n.blocks),
            key=lambda pair: (
                _RANK[pair[1].kind],
                pair[1].size > LONG_BLOCK_BYTES,
                -pair[0],
                pair[1].order,
            ),
        )
        plan = _Plan(notes=notes, budget=budget_bytes, header=header)
        everything = _Plan(
            notes=[
                _Note(
                    n.path, n.headings, n.blocks, dropped=n.dropped, dropped_blocks=n.dropped_blocks
                )
                for n in notes
            ],
            budget=budget_bytes,
            header=header,
        )
        for i, block in candidates:
            everything.try_keep(i, block, force=True)
        if utf8_size(header) + everything.used <= budget_bytes:
            plan = everything
        elif utf8_size(header) + plan.trailer_size() > budget_bytes:
            # Not even the list of what was left out fits: the budget is tiny. Still never
            # pass it, and still say, as far as it goes, what was left out.
            return _summary(plan, utf8_truncate(_render(plan), budget_bytes))
        else:
            # Keeping a block shrinks the list of omissions, so a block refused early can
            # fit later: go over the rest again until nothing more fits.
            remaining = candidates
            for _ in range(MAX_PASSES):
                left = [(i, b) for i, b in remaining if not plan.try_keep(i, b)]
                if len(left) == len(remaining):
                    break
                remaining = left
        return _summary(plan, _render(plan))


def _summary(plan: _Plan, text: str) -> Summary:
    dropped = [
        {"path": n.path, "bytes": n.dropped, "blocks": n.dropped_blocks}
        for n in plan.notes
        if n.dropped
    ]
    total = sum(b.size for n in plan.notes for b in n.blocks)
    dropped_bytes = sum(row["bytes"] for row in dropped)
    return Summary(
        text=text, kept_bytes=total - dropped_bytes, dropped_bytes=dropped_bytes, dropped=dropped
    )


def _render(plan: _Plan) -> str:
    parts = [plan.header]
    for index, note in enumerate(plan.notes):
        if not note.started:
            continue
        parts.append(f"\n## {note.path}\n")
        elements: list[tuple[int, str]] = [
            (note.headings[h].order, _demoted(note.headings[h])) for h in note.shown_headings
        ]
        elements += [
            (b.order, _block_text(b)) for b in note.blocks if (index, b.order) in plan.shown
        ]
        parts.extend(f"\n{text}\n" for _, text in sorted(elements, key=lambda e: e[0]))
    if any(n.dropped for n in plan.notes):
        parts.append(plan.trailer_intro())
        parts.extend(plan.omitted_line(n.path, n.dropped) for n in plan.notes if n.dropped)
    return "".join(parts)
