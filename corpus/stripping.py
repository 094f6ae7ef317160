"""What the sanitizer removed from a document's HTML, so the editor can say so.

nh3 drops markup outside the allowlist (``corpus.rendering``) without a word; an admin who
typed ``<details>`` or a ``javascript:`` link would otherwise see it vanish and not know
why. The report compares the elements and attributes of cmark's HTML before sanitizing
with those after (both read by the standard library's HTML parser): whatever is fewer
afterwards was removed. It names kinds of markup, never their content.
"""

from __future__ import annotations

from collections import Counter
from html.parser import HTMLParser

from corpus.rendering import sanitize_html, unsanitized_html


class _Census(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: Counter[str] = Counter()
        self.attributes: Counter[tuple[str, str]] = Counter()
        self.comments = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags[tag] += 1
        for name, _ in attrs:
            self.attributes[(tag, name)] += 1

    def handle_comment(self, data: str) -> None:
        self.comments += 1


def _census(html: str) -> _Census:
    census = _Census()
    census.feed(html)
    census.close()
    return census


def _times(count: int) -> str:
    return "" if count == 1 else f" (×{count})"  # noqa: RUF001 (a multiplication sign, on purpose)


def removed_between(raw: str, clean: str) -> list[str]:
    """The markup in ``raw`` that ``clean`` lacks, e.g. ``["<script>", "href of <a>"]``."""
    before, after = _census(raw), _census(clean)
    removed = [
        f"<{tag}>{_times(count - after.tags[tag])}"
        for tag, count in sorted(before.tags.items())
        if count > after.tags[tag]
    ]
    removed += [
        f"{name} of <{tag}>{_times(count - after.attributes[(tag, name)])}"
        for (tag, name), count in sorted(before.attributes.items())
        # Only attributes of elements that were kept: a removed element's go with it.
        if count > after.attributes[(tag, name)] and after.tags[tag]
    ]
    if before.comments > after.comments:
        removed.append(f"HTML comment{_times(before.comments - after.comments)}")
    return removed


def removed_markup(text: str) -> list[str]:
    """What rendering ``text`` loses to the sanitizer (``MarkdownTooLarge`` past the limit)."""
    raw = unsanitized_html(text)
    return removed_between(raw, sanitize_html(raw))


def stripped_notice(removed: list[str]) -> str:
    return (
        "Not shown on the pages (removed by the sanitizer, which allows only plain "
        f"markdown's HTML): {', '.join(removed)}. The text itself is saved as typed."
    )
