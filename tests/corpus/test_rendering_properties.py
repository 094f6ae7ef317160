"""corpus.rendering: arbitrary text and markdown made of dangerous fragments render safe
and stable (hypothesis; tests/corpus/html_safety.py checks)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from corpus.rendering import render_markdown, sanitize_html
from tests.corpus.html_safety import problems

# --- properties --------------------------------------------------------------------------

FRAGMENTS = [
    # markdown syntax
    "[",
    "]",
    "(",
    ")",
    "![",
    "<",
    ">",
    "`",
    "```",
    "~~~",
    "\n",
    "\n\n",
    "    ",
    "\t",
    "|",
    "|---|",
    ":--",
    "---",
    "*",
    "**",
    "_",
    "#",
    "> ",
    "1. ",
    "- ",
    "* ",
    '"',
    "'",
    "&",
    "&#",
    "&#x",
    ";",
    "x",
    ":",
    "/",
    "//",
    " ",
    "\\",
    "=",
    "{",
    "}",
    ".",
    "[r]: ",
    "https://ok.example/",
    "mailto:a@b.c",
    "@",
    "\x00",
    "\x01",
    "\x0b",
    # dangerous pieces
    "<script>",
    "</script>",
    "javascript:",
    "JaVaScRiPt:",
    "java\tscript:",
    "&#106;",
    "&#x6A",
    "&#0000106",
    "&colon;",
    "vbscript:",
    "data:text/html,",
    "onerror=",
    "onclick=",
    " onload=alert(1)",
    "alert(1)",
    "[x](",
    "](javascript:",
    "<img",
    " src=x",
    "<a href=",
    "<svg",
    "<math",
    "<mglyph>",
    "<style>",
    "</style>",
    "<!--",
    "-->",
    "--!>",
    "<iframe",
    "<template>",
    "<noscript>",
    "</noscript>",
    "<textarea>",
    "style=",
    "<pre>",
    "&#13;",
    "\r",
    "\ufeff",
    "expression(",
    "url(",
    '"><',
    "<![CDATA[",
    "<base href=",
    "<form action=",
]
fragment_markdown = st.lists(
    st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=3)), max_size=40
).map("".join)


def check_property(source: str) -> None:
    output = render_markdown(source)
    assert problems(output) == [], (source, output)
    assert sanitize_html(output) == output, (source, output)


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_arbitrary_text_is_safe_and_stable(source):
    check_property(source)


@settings(max_examples=200, deadline=None)
@given(fragment_markdown)
def test_markdown_with_dangerous_fragments_is_safe_and_stable(source):
    check_property(source)
