"""corpus.rendering: XSS vectors, each neutralised (tests/corpus/html_safety.py checks)."""

from __future__ import annotations

import pytest

from corpus.rendering import render_markdown, sanitize_html
from tests.corpus.html_safety import assert_safe, problems
from tests.corpus.xss_vectors import JS, VECTORS


def test_vector_suite_is_large_and_unique():
    assert len(VECTORS) >= 40
    assert len({name for name, _ in VECTORS}) == len(VECTORS)


@pytest.mark.parametrize("source", [v for _, v in VECTORS], ids=[n for n, _ in VECTORS])
def test_xss_vector_is_neutralized(source):
    output = assert_safe(source)
    assert sanitize_html(output) == output


def test_dangerous_link_keeps_text_but_loses_href():
    assert render_markdown(f"[click](JaVa&#x09;ScRiPt:{JS})") == (
        '<p><a rel="noopener noreferrer">click</a></p>'
    )


def test_checker_catches_what_it_should():
    """The checker itself must not be a no-op."""
    assert problems('<a href="java&#x09;script:alert(1)" rel="noopener noreferrer">x</a>')
    assert problems('<a href=" &#x0E;JAVASCRIPT:x" rel="noopener noreferrer">x</a>')
    assert problems('<img src="/relative.png">')
    assert problems('<p onclick="x">y</p>')
    assert problems('<p style="color:red">y</p>')
    assert problems("<div>y</div>")
    assert problems("<!-- c -->")
    assert problems('<a href="https://x">no rel</a>')
    assert problems('<a href="page:x" rel="noopener noreferrer">x</a>')
    assert not problems('<a href="/a:b" rel="noopener noreferrer">x</a><p>ok</p>')
