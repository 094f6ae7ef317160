"""Side-by-side diffs of two document versions, as HTML that is safe to put in a page.

Lines are matched first (``difflib.SequenceMatcher``); within a changed pair of lines the
words are matched again, so a one-word edit in a long paragraph marks that word
(``<del>``/``<ins>``), not the whole line. Every piece of text goes through ``escape``;
long lines wrap in the page (``white-space: pre-wrap``) instead of being cut off.
Unchanged stretches collapse to ``CONTEXT_LINES`` around each change. Large texts get a
plain unified diff instead: the matcher is quadratic and a megabyte body would hold the
request.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator
from dataclasses import dataclass

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

# Above this many characters (both sides together) the diff is unified, not side by side.
SIDE_BY_SIDE_MAX_CHARS = 200_000
CONTEXT_LINES = 3
# A pair of lines longer than this is marked whole: word matching is quadratic too.
WORD_DIFF_MAX_CHARS = 5_000
_TOKENS = re.compile(r"\s+|\w+|[^\w\s]")


@dataclass(frozen=True)
class Diff:
    """Either ``table`` (escaped HTML) or ``unified`` (plain text for the template to escape)."""

    table: SafeString | None
    unified: str | None
    identical: bool


def _words(old: str, new: str) -> tuple[str, str]:
    """The two lines as escaped HTML, what differs between them in <del> and <ins>."""
    if len(old) + len(new) > WORD_DIFF_MAX_CHARS:
        return f"<del>{escape(old)}</del>", f"<ins>{escape(new)}</ins>"
    a, b = _TOKENS.findall(old), _TOKENS.findall(new)
    left: list[str] = []
    right: list[str] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        removed, added = escape("".join(a[i1:i2])), escape("".join(b[j1:j2]))
        if tag == "equal":
            left.append(removed)
            right.append(added)
            continue
        if removed:
            left.append(f"<del>{removed}</del>")
        if added:
            right.append(f"<ins>{added}</ins>")
    return "".join(left), "".join(right)


def _row(kind: str, old_no: int | None, old: str, new_no: int | None, new: str) -> str:
    return (
        f'<tr class="diff-row diff-row--{kind}">'
        f'<td class="diff-num">{old_no or ""}</td><td class="diff-old">{old}</td>'
        f'<td class="diff-num">{new_no or ""}</td><td class="diff-new">{new}</td></tr>'
    )


def _rows(a: list[str], b: list[str]) -> Iterator[str]:
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    for group_no, group in enumerate(matcher.get_grouped_opcodes(CONTEXT_LINES)):
        first = group[0]
        if group_no or first[1] > 0:
            yield '<tr class="diff-skip"><td colspan="4">⋯</td></tr>'
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                for k in range(i2 - i1):
                    text = escape(a[i1 + k])
                    yield _row("equal", i1 + k + 1, text, j1 + k + 1, text)
                continue
            pairs = max(i2 - i1, j2 - j1)
            for k in range(pairs):
                old = a[i1 + k] if i1 + k < i2 else None
                new = b[j1 + k] if j1 + k < j2 else None
                if old is not None and new is not None:
                    left, right = _words(old, new)
                    yield _row("change", i1 + k + 1, left, j1 + k + 1, right)
                elif old is not None:
                    yield _row("delete", i1 + k + 1, f"<del>{escape(old)}</del>", None, "")
                else:
                    yield _row("insert", None, "", j1 + k + 1, f"<ins>{escape(new)}</ins>")
    last = group[-1] if matcher.get_opcodes() else None
    if last is not None and last[2] < len(a):
        yield '<tr class="diff-skip"><td colspan="4">⋯</td></tr>'


def diff_texts(old: str, new: str, *, old_label: str, new_label: str) -> Diff:
    """The difference between two bodies; labels are plain text and get escaped."""
    if old == new:
        return Diff(table=None, unified=None, identical=True)
    if len(old) + len(new) > SIDE_BY_SIDE_MAX_CHARS:
        unified = "\n".join(
            difflib.unified_diff(
                old.splitlines(),
                new.splitlines(),
                fromfile=old_label,
                tofile=new_label,
                n=CONTEXT_LINES,
                lineterm="",
            )
        )
        return Diff(table=None, unified=unified, identical=False)
    table = (
        '<table class="word-diff"><colgroup><col class="diff-num-col"><col>'
        '<col class="diff-num-col"><col></colgroup>'
        f'<thead><tr><th colspan="2" scope="col">{escape(old_label)}</th>'
        f'<th colspan="2" scope="col">{escape(new_label)}</th></tr></thead>'
        f"<tbody>{''.join(_rows(old.splitlines(), new.splitlines()))}</tbody></table>"
    )
    # Safe: every user-typed character went through escape() above.
    return Diff(table=mark_safe(table), unified=None, identical=False)
