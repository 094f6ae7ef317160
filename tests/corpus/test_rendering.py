"""corpus.rendering: markdown renders as expected and nothing active survives (the safety
check: tests/corpus/html_safety.py; XSS vectors and properties: test_rendering_xss.py,
test_rendering_properties.py)."""

from __future__ import annotations

import pytest

from corpus.rendering import render_markdown, sanitize_html
from tests.corpus.html_safety import assert_safe

# --- rendering basics ------------------------------------------------------------------


def test_table_uses_align_not_style():
    output = assert_safe("| a | b | c |\n|:--|:-:|--:|\n| 1 | 2 | 3 |\n")
    assert "<table>" in output and "<thead>" in output and "<tbody>" in output
    assert '<th align="left">a</th>' in output
    assert '<th align="center">b</th>' in output
    assert '<td align="right">3</td>' in output
    assert "style" not in output


def test_fenced_code_keeps_language_and_escapes_content():
    output = assert_safe('```python\nif a < b and c > "d":\n    pass\n```\n')
    assert '<pre><code class="language-python">' in output
    assert 'if a &lt; b and c &gt; "d":' in output


def test_fenced_code_drops_non_language_classes():
    output = assert_safe("```{.foo .language-bar}\nz\n```\n")
    assert 'class="foo"' not in output
    # cmark-gfm takes the info string's first word, "{.foo", as the language; the class
    # filter refuses it (Python-Markdown's attribute lists made it "language-foo").
    assert "<pre><code>z" in output


def test_inline_code_escapes_html():
    output = assert_safe("use `<script>alert(1)</script>` carefully")
    assert "<code>&lt;script&gt;alert(1)&lt;/script&gt;</code>" in output


def test_lists_sane():
    output = assert_safe("3. three\n4. four\n\n* bullet\n- dash\n")
    assert '<ol start="3">' in output
    assert "<li>three</li>" in output and "<li>four</li>" in output
    assert "<ul>" in output and "<li>bullet</li>" in output


def test_emphasis_headings_quotes_rules():
    output = assert_safe('# Title\n\n> *em* **strong** "quotes" -- dash\n\n---\n')
    assert "<h1>Title</h1>" in output
    assert "<blockquote>" in output
    assert "<em>em</em>" in output and "<strong>strong</strong>" in output
    assert '"quotes" -- dash' in output  # no smarty
    assert "<hr>" in output


def test_links_get_rel_and_keep_relative_and_mailto():
    output = assert_safe(
        '[abs](https://example.com/x?a=1&b=2 "T") [rel](/tasks/1) [bare](page.html) '
        "[frag](#top) [mail](mailto:someone@example.com) <https://auto.example/> "
        "<someone@example.com>"
    )
    assert (
        '<a href="https://example.com/x?a=1&amp;b=2" title="T" rel="noopener noreferrer">abs</a>'
        in output
    )
    assert '<a href="/tasks/1" rel="noopener noreferrer">rel</a>' in output
    assert '<a href="page.html" rel="noopener noreferrer">bare</a>' in output
    assert '<a href="#top" rel="noopener noreferrer">frag</a>' in output
    assert '<a href="mailto:someone@example.com" rel="noopener noreferrer">mail</a>' in output
    assert '<a href="https://auto.example/" rel="noopener noreferrer">' in output
    # Python-Markdown entity-obfuscates email autolinks; nh3 re-serializes them plainly.
    assert '<a href="mailto:someone@example.com" rel="noopener noreferrer">someone@' in output
    assert output.count('rel="noopener noreferrer"') == 7


def test_existing_rel_and_target_are_replaced():
    output = assert_safe('<a href="https://x.example" rel="opener" target="_blank">x</a>')
    assert output == '<p><a href="https://x.example" rel="noopener noreferrer">x</a></p>'


def test_images_http_only():
    output = assert_safe("![a](https://x.example/a.png 't') ![b](/local.png) ![c](mailto:x@y)")
    # cmark-gfm writes src before alt (Python-Markdown wrote alt first); nh3 keeps the order.
    assert '<img src="https://x.example/a.png" alt="a" title="t">' in output
    assert '<img alt="b">' in output
    assert '<img alt="c">' in output


def test_disallowed_tags_are_unwrapped_text_kept():
    assert render_markdown("<div><b>bold</b> <span>text</span></div>") == "bold text"


def test_no_generic_attributes():
    output = assert_safe('<p title="t" lang="en" dir="rtl" id="i" class="language-x">x</p>')
    assert output == "<p>x</p>"


@pytest.mark.parametrize(
    "source",
    [
        "&#13;",
        "&#XD",
        "a&#13;&#10;b",
        "```\na&#13;b\n```",
        "<pre>&#13;",
        "<pre>\n\nx</pre>",
        "<noscript>\ufeff",
        "<div>&#65279;x</div>",
        "<pre>" + "&#13;" * 5 + "\n" * 5 + "x</pre>",
        "<a href='/x'><table><a href='/x'>",
        "<h1><table><caption><h1>" * 3,
        "<li><table><caption>" * 3,
    ],
)
def test_serializer_round_trip_quirks_are_stable(source):
    # Each of these once produced output that a second nh3 pass changed: a raw CR
    # (reparsed as LF), a newline right after <pre> (dropped), a leading U+FEFF
    # (dropped as a BOM), an <a> nested in an <a> or an <h1> in an <h1> by table
    # foster-parenting (those take up to three passes to settle).
    output = assert_safe(source)
    assert sanitize_html(output) == output
    assert sanitize_html(source) == sanitize_html(sanitize_html(source))


def test_pre_keeps_its_leading_blank_line_and_carriage_returns():
    assert sanitize_html("<pre>\n\nx</pre>") == "<pre>\n\nx</pre>"
    assert sanitize_html("<p>a&#13;b</p>") == "<p>a&#13;b</p>"


def test_lone_surrogate_does_not_crash():
    assert render_markdown("a\ud800b") == "<p>a?b</p>"


def test_empty():
    assert render_markdown("") == ""
