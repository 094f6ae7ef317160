"""Side-by-side diffs of two document versions, as HTML that is safe to put in a page.

``difflib.HtmlDiff`` escapes ``&``, ``<`` and ``>`` of every line it prints, and the
lines only ever land in element content (never in an attribute), so quotes need no
escaping. Two things it does not guard are handled here: the column headers are
inserted verbatim (so they are escaped before they go in), and it marks changes with
the control characters NUL and SOH, which it later swaps for ``<span>`` tags, so those
are taken out of the texts first. Large texts get a plain unified diff instead: the
side-by-side matcher is quadratic and a megabyte body would hold the request.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

# Above this many characters (both sides together) the diff is unified, not side by side.
SIDE_BY_SIDE_MAX_CHARS = 200_000
CONTEXT_LINES = 3
WRAP_COLUMN = 80
_MARKERS = str.maketrans({"\0": "\ufffd", "\1": "\ufffd"})


@dataclass(frozen=True)
class Diff:
    """Either ``table`` (escaped HTML) or ``unified`` (plain text for the template to escape)."""

    table: SafeString | None
    unified: str | None
    identical: bool


def _lines(text: str) -> list[str]:
    return text.translate(_MARKERS).splitlines()


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
    table = difflib.HtmlDiff(wrapcolumn=WRAP_COLUMN).make_table(
        _lines(old),
        _lines(new),
        fromdesc=escape(old_label),
        todesc=escape(new_label),
        context=True,
        numlines=CONTEXT_LINES,
    )
    # Safe: every user-typed character went through HtmlDiff's escaping or escape() above.
    return Diff(table=mark_safe(table), unified=None, identical=False)
