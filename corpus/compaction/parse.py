"""A working note read as blocks, each with the kind of content it is.

A block is what a reader takes in at once: a paragraph, a list item with its nested
items and continuation lines, a fenced code block, or the heading of a section that has
nothing under it. Its kind decides how hard the outline summariser tries to keep it:
``decision`` > ``open`` > ``changed`` > ``files`` > ``rest`` > ``narrative`` (the rest
that names nothing concrete: no number, code, path or identifier, only prose). A block
takes the kind of
the section it sits in (sections nest by heading level, so a list under ``### Database``
inside ``## Decisions`` is decisions), unless its own words say more: "Decided: …" is a
decision anywhere, "- [ ] …", "TODO …" and "FIXME …" are open items anywhere.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from corpus.compaction.base import utf8_size

KINDS = ("decision", "open", "changed", "files", "rest", "narrative")

# CommonMark allows up to three spaces before an ATX heading's hashes.
_HEADING = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?[ \t#]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_LIST_ITEM = re.compile(r"^(\s*)(?:[-*+]|\d{1,9}[.)])\s+")
_UNCHECKED = re.compile(r"^\s*(?:[-*+]|\d{1,9}[.)])\s+\[ \]")
_CHECKED = re.compile(r"^\s*(?:[-*+]|\d{1,9}[.)])\s+\[[xX]\]")
# Word boundary at the front only, so "Decisions" matches but "undecided" does not.
_DECISION = re.compile(r"\b(?:decision|decided|we chose)", re.IGNORECASE)
_OPEN_MARKER = re.compile(r"^(?:todo\b|fixme\b|open question)", re.IGNORECASE)
# A list item that names a file: "- `orders/api.py`: …", "- src/app.ts".
_PATH_ITEM = re.compile(r"^`?[\w.@-]*(?:/[\w.@-]+)+`?(?:\s|:|$)|^`?[\w@-]+\.[A-Za-z]{1,8}`?(?::|$)")

# Something a later run can act on: a number, code, a path, an identifier (snake_case,
# dotted.name, CamelCase) or a link. Prose without any of these is narrative.
_CONCRETE = re.compile(r"\d|`|\w/\w|\w_\w|\w\.\w|[a-z][A-Z]|https?:")

# A sentence ends at . ! or ? before white space and a capital, a digit or a quote: "v1.2"
# and "R3.1:" stay whole, and a wrong cut only costs a join, never text.
_SENTENCE_END = re.compile(r"(?<=[.!?])(\s+)(?=[A-Z0-9`\"'(\[])")

# Section kinds by heading title, first match wins.
_SECTIONS = [
    ("decision", re.compile(r"decision|decided", re.IGNORECASE)),
    (
        "open",
        re.compile(
            r"\bopen\b|\btodos?\b|question|next steps?|follow.?ups?|blocker|unresolved",
            re.IGNORECASE,
        ),
    ),
    (
        "changed",
        re.compile(
            r"chang|\bdone\b|progress|\bfixed\b|implemented|what (?:i|we) did|results?\b",
            re.IGNORECASE,
        ),
    ),
    ("files", re.compile(r"\bfiles?\b|touched|\bpaths?\b", re.IGNORECASE)),
]


@dataclass(frozen=True)
class Heading:
    level: int
    text: str  # as written, stripped
    kind: str  # the section's kind (inherited from enclosing headings when it has none)
    order: int  # its place among the note's blocks and headings
    parents: tuple[int, ...]  # the enclosing headings, outermost first


@dataclass(frozen=True)
class Block:
    """One block of a note: its position (``order``), the headings it sits under (indexes
    into the note's heading list, outermost first), its text and its kind.

    A paragraph of findings or prose (kind ``rest`` or ``narrative``) is cut into its
    sentences, one block each with the paragraph's ``order`` and its own ``part``: a
    concrete sentence ("p95 was 120 ms.") can then be kept without the prose around it,
    and a sentence every note repeats is written once. ``joiner`` is what stood between
    the sentence and the one before it (a space or a newline).
    """

    order: int
    kind: str
    headings: tuple[int, ...]
    text: str
    heading_level: int = 0  # an empty section's heading kept as a block: its level
    part: int = 0  # the sentence's place in its paragraph
    joiner: str = ""
    # Computed once: the summariser asks for them many times per block.
    size: int = field(init=False, compare=False)
    # Equal for the same block written again (indentation and trailing space aside).
    key: str = field(init=False, compare=False)
    item: bool = field(init=False, compare=False)  # a list item (rendered without a blank line)

    def __post_init__(self) -> None:
        object.__setattr__(self, "size", utf8_size(self.text))
        object.__setattr__(self, "key", "\n".join(line.strip() for line in self.text.split("\n")))
        first = self.text.split("\n", 1)[0]
        object.__setattr__(self, "item", bool(_LIST_ITEM.match(first)) and not self.heading_level)


def _section_kind(title: str, outer: str) -> str:
    for kind, pattern in _SECTIONS:
        if pattern.search(title):
            return kind
    return outer


def _block_kind(text: str, section: str) -> str:
    first = text.split("\n", 1)[0]
    if _FENCE.match(first):
        return section  # code is what its section is; its words are not the note's
    item = _LIST_ITEM.match(first)
    body = first[item.end() :] if item else first.strip()
    if _DECISION.search(text):
        return "decision"
    if _UNCHECKED.match(first) or _OPEN_MARKER.match(body):
        return "open"
    if section == "open" and _CHECKED.match(first):
        return "changed"  # a ticked box under "Open …" is settled: it is what changed
    if section != "rest":
        return section
    if _CHECKED.match(first):
        return "changed"
    if item and _PATH_ITEM.match(body):
        return "files"
    return "rest" if _CONCRETE.search(text) else "narrative"


def note_blocks(body: str) -> tuple[list[Heading], list[Block]]:
    """The note's headings and its blocks in reading order.

    Fenced code is one block whole (a ``#`` comment in a shell snippet is no heading);
    a fence that never closes runs to the end of the note.
    """
    headings: list[Heading] = []
    blocks: list[Block] = []
    stack: list[int] = []  # indexes of the open headings, outermost first
    current: list[str] = []
    current_indent = -1  # the first line's list indent; -1 for a paragraph
    fence = ""
    order = 0

    def section() -> str:
        return headings[stack[-1]].kind if stack else "rest"

    def flush() -> None:
        nonlocal current, order
        if current:
            text = "\n".join(current)
            kind = _block_kind(text, section())
            prose = not (_FENCE.match(current[0]) or _LIST_ITEM.match(current[0]))
            if kind in ("rest", "narrative") and prose:
                blocks.extend(_sentences(order, tuple(stack), text))
            else:
                blocks.append(Block(order, kind, tuple(stack), text))
            order += 1
            current = []

    for raw in body.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        line = raw.rstrip()
        text = line.lstrip()
        if fence:
            current.append(line)
            if text.startswith(fence) and not text[len(fence) :].strip():
                fence = ""
                flush()
            continue
        if not text:
            flush()
            continue
        opening = _FENCE.match(line) if text[0] in "`~" else None
        if opening:
            flush()
            fence = opening.group(1)[0] * len(opening.group(1))
            current = [line]
            continue
        heading = _HEADING.match(line) if text[0] == "#" else None
        if heading:
            flush()
            level = len(heading.group(1))
            while stack and headings[stack[-1]].level >= level:
                stack.pop()
            kind = _section_kind(heading.group(2) or "", section())
            headings.append(Heading(level, text, kind, order, tuple(stack)))
            stack.append(len(headings) - 1)
            # Headings take a place in the order too, so an empty section can be kept.
            order += 1
            continue
        item = _LIST_ITEM.match(line)
        if item and (not current or current_indent < 0 or len(item.group(1)) <= current_indent):
            flush()
            current_indent = len(item.group(1))
        elif not current or (current_indent >= 0 and line == text):
            # An unindented line after a list item starts a paragraph of its own: notes
            # write "TODO: …" under a list meaning a new line, not a lazy continuation.
            flush()
            current_indent = -1
        current.append(line)
    flush()
    return headings, _with_empty_sections(headings, blocks)


def _sentences(order: int, headings: tuple[int, ...], text: str) -> list[Block]:
    """A paragraph of findings or prose, a block per sentence: concrete ones are ``rest``,
    the others ``narrative``."""
    pieces = _SENTENCE_END.split(text)
    # split() with one group gives text, joiner, text, joiner, …
    blocks = []
    for part, start in enumerate(range(0, len(pieces), 2)):
        sentence = pieces[start]
        joiner = "" if start == 0 else ("\n" if "\n" in pieces[start - 1] else " ")
        kind = "rest" if _CONCRETE.search(sentence) else "narrative"
        blocks.append(Block(order, kind, headings, sentence, part=part, joiner=joiner))
    return blocks


def _with_empty_sections(headings: list[Heading], blocks: list[Block]) -> list[Block]:
    """A heading with nothing under it ("## Done: migrated the schema") says something
    itself: it becomes a block of its own, at its own place in the note."""
    used = {index for block in blocks for index in block.headings}
    extra = [
        Block(heading.order, heading.kind, heading.parents, heading.text, heading.level)
        for index, heading in enumerate(headings)
        if index not in used
    ]
    return sorted(blocks + extra, key=lambda block: (block.order, block.part))
