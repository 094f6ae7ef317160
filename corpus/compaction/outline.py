"""The deterministic ``outline`` summariser: keeps content, fills the budget, says what
it left out, and spends as few bytes as it can on anything but content.

The memory (``outline-v3``)::

    # Compacted working memory

    Folded from 17 working notes, r1 the oldest; what is left out stays in the raw note:

    - r17 working/run_….md
    - r16 omitted: working/run_….md, 1234 bytes
    …

    ## Decisions

    r17:
    - Freeze time with time_machine.

    ## Open items
    …

One section per kind (decisions, open items, what changed, files touched, other notes),
merged across the notes, newest note first, each note's blocks under its short label
(``r17:``) in their original order. The list at the top maps each label to its raw note
and, for a note that lost content, says how much (the ``omitted:`` line of CONTRACT.md §7).
A note's own headings are not repeated: the kind sections take their place.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from typing import ClassVar

from corpus.compaction.base import MEMORY_TITLE, Summary, WorkingNote, utf8_size, utf8_truncate
from corpus.compaction.parse import KINDS, Block, note_blocks

_RANK = {kind: rank for rank, kind in enumerate(KINDS)}
_HASHES = re.compile(r"^\s*#{1,6}\s*")
SECTIONS = {
    "decision": "Decisions",
    "open": "Open items",
    "changed": "What changed",
    "files": "Files touched",
    "rest": "Other notes",
    "narrative": "Other notes",
}
SECTION_ORDER = ["Decisions", "Open items", "What changed", "Files touched", "Other notes"]
# Within one kind, short blocks (a list item, a sentence or two) go before long ones, each
# newest note first: one long paragraph must not crowd out several decisions.
LONG_BLOCK_BYTES = 280
# Passes over the blocks refused so far; each later one only picks up what the shrinking
# list of omissions made room for, so more rarely finds anything.
MAX_PASSES = 4


def label(index: int) -> str:
    """The short name of the ``index``-th folded note (0 = the oldest): ``r1``, ``r2``…"""
    return f"r{index + 1}"


def _block_text(block: Block) -> str:
    # An empty section's heading is content, written as a line of its own: a heading
    # would break the memory's own sections.
    return _HASHES.sub("", block.text, count=1) if block.heading_level else block.text


def _block_cost(block: Block) -> int:
    """Bytes the block adds to the text, at most: a list item follows the line before it,
    anything else a blank line; a sentence joins the one before it by one character."""
    return utf8_size(_block_text(block)) + (1 if block.item else 2)


def _section_cost(title: str) -> int:
    return utf8_size(f"\n## {title}\n")


def _group_cost(index: int) -> int:
    return utf8_size(f"\n{label(index)}:\n")


@dataclass
class _Note:
    path: str
    blocks: list[Block]
    dropped: int = 0  # content bytes not (yet) kept
    dropped_blocks: int = 0


@dataclass
class _Plan:
    """What is kept so far and what the text costs at most, kept in step as blocks are
    added (never recounted)."""

    notes: list[_Note]
    budget: int
    header: str
    used: int = 0  # sections, note labels and blocks
    sections: set[str] = field(default_factory=set)
    groups: set[tuple[str, int]] = field(default_factory=set)  # (section, note) labelled
    shown: set[tuple[int, int, int]] = field(default_factory=set)  # (note, order, part)
    kept_keys: set[str] = field(default_factory=set)
    # (note, order, part) of a ticked item -> the open items (note, block) it resolves.
    resolves: dict[tuple[int, int, int], list[tuple[int, Block]]] = field(default_factory=dict)
    legend_size: int = 0

    def __post_init__(self) -> None:
        self.header_size = utf8_size(self.header)
        # The list's lines differ only in the number of bytes omitted: sized once.
        self.whole_sizes = [utf8_size(self.legend_line(i, 0)) for i in range(len(self.notes))]
        self.omitted_sizes = [utf8_size(self.legend_line(i, 1)) - 1 for i in range(len(self.notes))]
        self.legend_size = sum(self.line_size(i, n.dropped) for i, n in enumerate(self.notes))

    def legend_line(self, index: int, dropped: int) -> str:
        path = self.notes[index].path
        if dropped:
            return f"- {label(index)} omitted: {path}, {dropped} bytes\n"
        return f"- {label(index)} {path}\n"

    def line_size(self, index: int, dropped: int) -> int:
        if dropped:
            return self.omitted_sizes[index] + len(str(dropped))
        return self.whole_sizes[index]

    def fixed_size(self) -> int:
        """The header and the list of notes as they stand."""
        return self.header_size + self.legend_size

    def try_keep(self, index: int, block: Block, *, force: bool = False) -> bool:
        # What keeping the block puts in: its own bytes, and those of the open items it
        # resolves (their words are in it), each note's line in the list changing with them.
        credits = [(index, block), *self.resolves.get((index, block.order, block.part), [])]
        less: dict[int, int] = {}
        for i, b in credits:
            less[i] = less.get(i, 0) + b.size
        legend_change = sum(
            self.line_size(i, self.notes[i].dropped - n) - self.line_size(i, self.notes[i].dropped)
            for i, n in less.items()
        )
        if block.key not in self.kept_keys:
            section = SECTIONS[block.kind]
            cost = _block_cost(block)
            cost += 0 if section in self.sections else _section_cost(section)
            cost += 0 if (section, index) in self.groups else _group_cost(index)
            if not force and self.fixed_size() + self.used + cost + legend_change > self.budget:
                return False
            self.used += cost
            self.sections.add(section)
            self.groups.add((section, index))
            self.shown.add((index, block.order, block.part))
            self.kept_keys.add(block.key)
        # else: the same text is already in the memory, so keeping it costs nothing.
        self.legend_size += legend_change
        for i, b in credits:
            self.notes[i].dropped -= b.size
            self.notes[i].dropped_blocks -= 1
        return True


class OutlineSummariser:
    """Keeps every block while the budget has room; past it, keeps decisions, open
    items, what changed, files touched, then the rest, then narrative: within each kind
    short blocks before long ones, newest note first. Names each note that lost content
    with the bytes it lost."""

    name: ClassVar[str] = "outline-v3"

    def summarise(self, inputs: list[WorkingNote], budget_bytes: int) -> Summary:
        header = _header(len(inputs))
        parsed = [(note.path, note_blocks(note.body)[1]) for note in inputs]

        resolves = resolutions([blocks for _, blocks in parsed])
        resolved = {(i, b.order, b.part) for pairs in resolves.values() for i, b in pairs}

        def fresh() -> _Plan:
            notes = [
                _Note(path, blocks, sum(b.size for b in blocks), len(blocks))
                for path, blocks in parsed
            ]
            return _Plan(notes=notes, budget=budget_bytes, header=header, resolves=resolves)

        def rank(index: int, block: Block) -> int:
            # A ticked item that resolves open items is kept as hard as they would be.
            if (index, block.order, block.part) in resolves:
                return min(_RANK[block.kind], _RANK["open"])
            return _RANK[block.kind]

        candidates = sorted(
            (
                (i, b)
                for i, (_, blocks) in enumerate(parsed)
                for b in blocks
                if (i, b.order, b.part) not in resolved
            ),
            key=lambda pair: (
                rank(*pair),
                pair[1].size > LONG_BLOCK_BYTES,
                -pair[0],
                pair[1].order,
                pair[1].part,
            ),
        )
        # Everything may fit (repeats are written once). When the distinct blocks alone
        # pass the budget it cannot, and the long history need not be laid out twice.
        distinct = {b.key: b.size for _, b in candidates}
        if sum(distinct.values()) <= budget_bytes:
            everything = fresh()
            for i, block in candidates:
                everything.try_keep(i, block, force=True)
            # The plan counts each block's bytes at most; the text itself decides.
            whole = _render(everything)
            if utf8_size(whole) <= budget_bytes:
                return _summary(everything, whole)
        plan = fresh()
        if plan.fixed_size() > budget_bytes:
            # Not even the list of what was left out fits: the budget is tiny. Still never
            # pass it, and still say, as far as it goes, what was left out.
            return _summary(plan, utf8_truncate(_render(plan), budget_bytes))
        # Keeping a block shrinks the list of omissions, so a block refused early can fit
        # later: go over the rest again until nothing more fits.
        remaining = candidates
        for _ in range(MAX_PASSES):
            left = [(i, b) for i, b in remaining if not plan.try_keep(i, b)]
            if len(left) == len(remaining):
                break
            remaining = left
        return _summary(plan, _render(plan))


_HEAD = 24
_CHECKBOX = re.compile(r"^\s*(?:[-*+]|\d{1,9}[.)])\s+\[([ xX])\]\s*")


def resolutions(notes: list[list[Block]]) -> dict[tuple[int, int, int], list[tuple[int, Block]]]:
    """Open items a later note (or a later line of the same note) ticks off: ``- [ ] X``
    then ``- [x] X…`` (the same words, perhaps with more after them). The ticked line
    carries the open item's words and says it is settled, so the memory writes only it.
    Keyed by the ticked block (note, order, part); the latest tick takes them all.

    Open items are indexed by their first ``_HEAD`` characters, so each tick looks up a
    handful of candidates instead of every open item of a long history.
    """
    heads: dict[str, list[tuple[int, Block, str]]] = {}
    ticks: list[tuple[int, Block, str]] = []
    for index, blocks in enumerate(notes):
        for block in blocks:
            box = _CHECKBOX.match(block.key)
            words = block.key[box.end() :] if box else ""
            if not (box and words):
                continue
            if box.group(1) == " ":
                heads.setdefault(words[:_HEAD], []).append((index, block, words))
            else:
                ticks.append((index, block, words))
    settled: dict[tuple[int, int, int], tuple[int, Block]] = {}  # open -> its latest tick
    for i, b, ticked in ticks:  # in note order: a later tick overwrites an earlier one
        candidates = heads.get(ticked[:_HEAD], [])
        short = (heads.get(ticked[:cut], []) for cut in range(1, min(_HEAD, len(ticked))))
        for index, block, words in itertools.chain(candidates, *short):
            if (i, b.order) > (index, block.order) and _continues(ticked, words):
                settled[(index, block.order, block.part)] = (i, b)
    found: dict[tuple[int, int, int], list[tuple[int, Block]]] = {}
    for index, blocks in enumerate(notes):
        for block in blocks:
            tick = settled.get((index, block.order, block.part))
            if tick is not None:
                i, b = tick
                found.setdefault((i, b.order, b.part), []).append((index, block))
    return found


def _continues(ticked: str, words: str) -> bool:
    """``ticked`` is ``words``, or ``words`` then more after a word's end."""
    return ticked.startswith(words) and (
        len(ticked) == len(words) or not (ticked[len(words)].isalnum() and words[-1].isalnum())
    )


def _header(count: int) -> str:
    noun = "note" if count == 1 else "notes"
    return (
        f"# {MEMORY_TITLE}\n\nFolded from {count} working {noun}, r1 the oldest; what is "
        "left out stays in the raw note, readable by path:\n\n"
    )


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
    newest_first = list(reversed(range(len(plan.notes))))
    parts.extend(plan.legend_line(i, plan.notes[i].dropped) for i in newest_first)
    for title in SECTION_ORDER:
        groups = []
        for index in newest_first:
            blocks = [
                b
                for b in plan.notes[index].blocks
                if SECTIONS[b.kind] == title and (index, b.order, b.part) in plan.shown
            ]
            if blocks:
                groups.append(f"\n{label(index)}:\n{_render_group(blocks)}")
        if groups:
            parts.append(f"\n## {title}\n")
            parts.extend(groups)
    return "".join(parts)


def _render_group(blocks: list[Block]) -> str:
    """One note's blocks of one section, in the note's order. Sentences of one paragraph
    stay one paragraph: joined as the note had them, or by a space where one between them
    was left out."""
    out: list[str] = []
    previous: Block | None = None
    for block in blocks:
        text = _block_text(block)
        if previous is not None and block.part and previous.order == block.order:
            adjacent = previous.part == block.part - 1
            out[-1] = out[-1][:-1] + (block.joiner if adjacent else " ") + text + "\n"
        elif block.item or previous is None:
            out.append(text + "\n")
        else:
            out.append("\n" + text + "\n")
        previous = block
    return "".join(out)
