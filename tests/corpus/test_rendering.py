"""corpus.rendering: markdown renders as expected and nothing active survives.

The safety checks parse the output with html.parser rather than grepping it, and
the allowlists are restated here on purpose: the tests are the spec, not a copy
of the module's constants.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corpus.rendering import render_markdown, sanitize_html

# Written out again on purpose, not imported: a test that trusted the module's own list
# would pass if someone widened it.
ALLOWED_TAGS = {
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "p",
    "br",
    "hr",
    "blockquote",
    "pre",
    "code",
    "em",
    "strong",
    "del",
    "ul",
    "ol",
    "li",
    "a",
    "img",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
}
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title", "rel"},
    "img": {"src", "alt", "title"},
    "ol": {"start"},
    "pre": {"class"},
    "code": {"class"},
    "th": {"align"},
    "td": {"align"},
}
LINK_SCHEMES = {"http", "https", "mailto"}
IMAGE_SCHEMES = {"http", "https"}


def url_scheme(value: str) -> str | None:
    """The scheme a browser would see, or None for a relative URL.

    ``value`` comes from HTMLParser, which has already html-unescaped it once, as a
    browser does (and more eagerly: named entities without ``;`` too). Unescaping a
    second time would be wrong: ``href="&amp;#106;avascript:x"`` is a harmless
    relative URL. Control characters are dropped everywhere and spaces trimmed,
    which is stricter than browsers (they trim C0/space at the ends and drop
    tab/CR/LF inside).
    """
    cleaned = re.sub(r"[\x00-\x1f\x7f]", "", value).strip(" ").lower()
    match = re.match(r"([a-z][a-z0-9+.\-]*):", cleaned)
    return match.group(1) if match else None


class Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.starts: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.ends: list[str] = []
        self.other: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.starts.append((tag, attrs))

    def handle_endtag(self, tag):
        self.ends.append(tag)

    def handle_comment(self, data):
        self.other.append(f"comment {data!r}")

    def handle_decl(self, decl):
        self.other.append(f"decl {decl!r}")

    def handle_pi(self, data):
        self.other.append(f"pi {data!r}")

    def unknown_decl(self, data):
        self.other.append(f"unknown decl {data!r}")


def problems(output: str) -> list[str]:
    """Everything wrong with ``output`` as safe rendered HTML (empty list: fine)."""
    found: list[str] = []
    if "<script" in output.lower():
        found.append("literal <script")
    parser = Collector()
    parser.feed(output)
    parser.close()
    found += parser.other
    found += [f"end tag {tag}" for tag in parser.ends if tag not in ALLOWED_TAGS]
    for tag, attrs in parser.starts:
        if tag not in ALLOWED_TAGS:
            found.append(f"tag {tag}")
        for name, value in attrs:
            value = value or ""
            if name.startswith("on"):  # onclick, onerror, ... (a superset of on[a-z]+)
                found.append(f"event handler {tag}[{name}]")
            if name == "style":
                found.append(f"style on {tag}")
            if name not in ALLOWED_ATTRIBUTES.get(tag, set()):
                found.append(f"attribute {tag}[{name}]")
            if name in {"href", "src"}:
                schemes = IMAGE_SCHEMES if tag == "img" else LINK_SCHEMES
                scheme = url_scheme(value)
                if scheme not in schemes and not (scheme is None and tag != "img"):
                    found.append(f"url {tag}[{name}]={value!r}")
            if name == "class" and not all(
                re.fullmatch(r"language-[\w+#.-]+", part) for part in value.split()
            ):
                found.append(f"class {value!r}")
            if name == "align" and value not in {"left", "center", "right"}:
                found.append(f"align {value!r}")
            if name == "start" and not value.isdigit():
                found.append(f"start {value!r}")
        if tag == "a" and dict(attrs).get("rel") != "noopener noreferrer":
            found.append(f"a without rel: {attrs!r}")
    return found


def assert_safe(source: str) -> str:
    output = render_markdown(source)
    assert problems(output) == [], (source, output)
    return output


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


# --- XSS vectors -----------------------------------------------------------------------

JS = "alert(1)"
VECTORS: list[tuple[str, str]] = [
    # markdown inline links, scheme spellings
    ("link-plain", f"[x](javascript:{JS})"),
    ("link-mixed-case", f"[x](JaVaScRiPt:{JS})"),
    ("link-upper", f"[x](JAVASCRIPT:{JS})"),
    ("link-leading-space", f"[x]( javascript:{JS})"),
    ("link-angle", f"[x](<javascript:{JS}>)"),
    ("link-leading-control", f"[x](\x01javascript:{JS})"),
    ("link-leading-formfeed", f"[x](\x0cjavascript:{JS})"),
    ("link-tab-in-scheme", f"[x](java\tscript:{JS})"),
    ("link-newline-in-scheme", f"[x](<java\nscript:{JS}>)"),
    ("link-nul-in-scheme", f"[x](java\x00script:{JS})"),
    ("link-dec-entity", f"[x](&#106;avascript:{JS})"),
    ("link-dec-entity-no-semicolon", f"[x](&#106avascript:{JS})"),
    ("link-dec-entity-zero-padded", f"[x](&#0000106;avascript:{JS})"),
    ("link-dec-entity-padded-no-semi", f"[x](&#0000106avascript:{JS})"),
    ("link-hex-entity", f"[x](&#x6A;avascript:{JS})"),
    ("link-hex-entity-upper-x", f"[x](&#X6A;avascript:{JS})"),
    ("link-hex-entity-zero-padded", f"[x](&#x000006a;avascript:{JS})"),
    ("link-hex-entity-no-semicolon", f"[x](jav&#x61script:{JS})"),
    ("link-colon-dec-no-semicolon", f"[x](javascript&#58{JS})"),
    ("link-colon-named-entity", f"[x](javascript&colon;{JS})"),
    ("link-tab-entity", f"[x](java&#x09;script:{JS})"),
    ("link-newline-entity", f"[x](java&#10;script:{JS})"),
    ("link-cr-entity", f"[x](java&#13script:{JS})"),
    ("link-every-char-entity", "[x](" + "".join(f"&#{ord(c)};" for c in "javascript:") + JS + ")"),
    ("link-url-encoded-colon", f"[x](javascript%3A{JS})"),
    ("link-url-encoded-scheme", f"[x](%6A%61%76%61%73%63%72%69%70%74:{JS})"),
    ("link-vbscript", "[x](vbscript:msgbox(1))"),
    ("link-vbscript-mixed", "[x](VbScRiPt:msgbox(1))"),
    ("link-data-html", "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)"),
    ("link-data-upper", "[x](DATA:text/html,<script>alert(1)</script>)"),
    ("link-data-entity", "[x](&#100;ata:text/html,x)"),
    ("link-file", "[x](file:///etc/passwd)"),
    # reference-style links
    ("ref-link", f"[x][r]\n\n[r]: javascript:{JS}"),
    ("ref-link-title", f'[x][r]\n\n[r]: javascript:{JS} "title"'),
    ("ref-link-entity", f"[x][r]\n\n[r]: &#x6A;avascript:{JS}"),
    ("ref-link-angle-spaces", f"[r]\n\n[r]: < JavaScript:{JS}>"),
    ("ref-link-data", "[x][d]\n\n[d]: data:text/html,<script>alert(1)</script>"),
    # autolinks
    ("autolink-js", f"<javascript:{JS}>"),
    ("autolink-http-breakout", '<http://x.example" onmouseover="alert(1)>'),
    ("autolink-email-js", f"<javascript:{JS}@example.com>"),
    ("autolink-email-breakout", '<a"onmouseover="alert(1)"@example.com>'),
    # images
    ("image-js", f"![x](javascript:{JS})"),
    ("image-js-entity", f"![x](&#106;avascript:{JS})"),
    ("image-ref-js", f"![x][i]\n\n[i]: javascript:{JS}"),
    ("image-data-svg", "![x](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+)"),
    ("image-relative", "![x](/logout)"),
    ("image-src-breakout", '![x](https://x.example/a.png" onerror="alert(1))'),
    ("image-alt-breakout", '![x" onerror="alert(1)](https://x.example/a.png)'),
    # attribute break-outs in markdown links
    ("title-breakout-quote", '[x](https://a.example "t\\" onmouseover=\\"alert(1)")'),
    ("title-breakout-script", '[x](https://a.example "\\"><script>alert(1)</script>")'),
    ("title-single-quote", "[x](https://a.example 'a\\' onclick=\\'alert(1)')"),
    ("url-breakout-script", '[x](https://a.example/"><script>alert(1)</script>)'),
    ("text-breakout-script", '[x"><script>alert(1)</script>](https://a.example)'),
    ("ref-title-breakout", '[x][r]\n\n[r]: https://a.example "\\"><img src=x onerror=alert(1)>"'),
    # raw script and friends
    ("script", "<script>alert(1)</script>"),
    ("script-upper-src", "<SCRIPT SRC=//evil.example/x.js></SCRIPT>"),
    ("script-mixed-inline", "text <scrIpt>alert(1)</scRipt> text"),
    ("script-nested", "<scr<script>ipt>alert(1)</script>"),
    ("script-double-open", "<<script>alert(1);//<</script>"),
    ("script-in-table-cell", "| a |\n|---|\n| <script>alert(1)</script> |"),
    ("script-in-list", "* <script>alert(1)</script>"),
    ("iframe-js", '<iframe src="javascript:alert(1)"></iframe>'),
    ("iframe-srcdoc", '<iframe srcdoc="<script>alert(1)</script>"></iframe>'),
    ("object", '<object data="javascript:alert(1)"></object>'),
    ("embed", '<embed src="javascript:alert(1)">'),
    ("base-href", '<base href="javascript:alert(1)//">'),
    ("meta-refresh", '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">'),
    ("form-action", '<form action="javascript:alert(1)"><input type=submit></form>'),
    ("button-formaction", "<form><button formaction=javascript:alert(1)>x</button></form>"),
    ("isindex", "<isindex action=javascript:alert(1) type=image>"),
    ("link-stylesheet", "<link rel=stylesheet href=javascript:alert(1)>"),
    ("style-import", "<style>@import 'javascript:alert(1)';</style>"),
    ("svg-onload", "<svg onload=alert(1)>"),
    ("svg-script", "<svg><script>alert(1)</script></svg>"),
    ("svg-a-xlink", '<svg><a xlink:href="javascript:alert(1)"><text>x</text></a></svg>'),
    ("math-href", '<math href="javascript:alert(1)">x</math>'),
    # raw <a>/<img> with scheme tricks
    ("raw-a-entity-colon", '<a href="javascript&colon;alert(1)">x</a>'),
    ("raw-a-control-prefix", '<a href=" &#14;javascript:alert(1)">x</a>'),
    ("raw-a-tab-entity", '<a href="jav&#x09;ascript:alert(1)">x</a>'),
    ("raw-a-partial-entity", '<a href="javas&#99;ript:alert(1)">x</a>'),
    ("raw-a-unquoted", "<a href=javascript:alert(1)>x</a>"),
    ("raw-a-slash-separator", '<a/href="javascript:alert(1)">x</a>'),
    ("raw-a-nul", "<a href='jav\x00ascript:alert(1)'>x</a>"),
    ("raw-a-data", '<a href="data:text/html,<script>alert(1)</script>">x</a>'),
    ("raw-a-vbscript", '<a href="vbscript:msgbox(1)">x</a>'),
    ("raw-a-url-encoded", '<a href="%6A%61%76%61script:alert(1)">x</a>'),
    ("raw-img-js", '<img src="javascript:alert(1)">'),
    ("raw-img-srcset", '<img srcset="javascript:alert(1)">'),
    ("raw-img-quote-tricks", '<img """><script>alert(1)</script>">'),
    # event handlers
    ("img-onerror", "<img src=x onerror=alert(1)>"),
    ("img-onerror-inline", "hello <img src=x onerror=alert(1)> world"),
    ("img-onerror-selfclose", '<img src="x" onerror="alert(1)"/>'),
    ("a-onclick", '<a href="#" onclick="alert(1)">x</a>'),
    ("a-onclick-upper", "<a href=https://ok.example ONCLICK=alert(1)>x</a>"),
    ("a-onmouseover-slash", "<a href=https://ok.example onmouseover=alert(1)//>x</a>"),
    ("p-onmouseover", '<p onmouseover="alert(1)">x</p>'),
    ("input-autofocus", "<input onfocus=alert(1) autofocus>"),
    ("details-ontoggle", "<details open ontoggle=alert(1)>"),
    ("body-onload", "<body onload=alert(1)>"),
    ("video-source-onerror", "<video><source onerror=alert(1)></video>"),
    ("marquee-onstart", "<marquee onstart=alert(1)>x</marquee>"),
    ("td-onclick", "| a |\n|---|\n| x |\n\n<table><tr><td onclick=alert(1)>x</td></tr></table>"),
    # style attributes
    ("style-url-js", '<div style="background:url(javascript:alert(1))">x</div>'),
    ("style-expression", '<p style="width: expression(alert(1))">x</p>'),
    ("style-overlay", '<a href="https://ok.example" style="position:fixed;inset:0">x</a>'),
    ("style-on-td", '<table><tr><td style="text-align: left">x</td></tr></table>'),
    # mutation XSS
    ("mxss-math-mglyph", "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>"),
    ("mxss-noscript", '<noscript><p title="</noscript><img src=x onerror=alert(1)>">'),
    ("mxss-svg-style", "<svg><style><img src=x onerror=alert(1)></style></svg>"),
    ("mxss-svg-p-style", '<svg></p><style><a id="</style><img src=1 onerror=alert(1)>">'),
    ("mxss-math-mi-style", "<math><mi><style><img src=x onerror=alert(1)></style></mi></math>"),
    (
        "mxss-form-nesting",
        "<form><math><mtext></form><form><mglyph><svg><mtext><style>"
        '<path id="</style><img onerror=alert(1) src>">',
    ),
    # template / textarea / raw-text tricks
    ("template", "<template><img src=x onerror=alert(1)></template>"),
    ("template-script", "<template><script>alert(1)</script></template>"),
    ("textarea-close", "<textarea></textarea><img src=x onerror=alert(1)></textarea>"),
    ("textarea-script", "<textarea><script>alert(1)</script></textarea>"),
    ("title-raw", "<title><img src=x onerror=alert(1)></title>"),
    ("xmp", "<xmp><img src=x onerror=alert(1)></xmp>"),
    ("noembed", "<noembed><img src=x onerror=alert(1)></noembed>"),
    # comments and declarations
    ("comment-abrupt", "<!--><img src=x onerror=alert(1)>-->"),
    ("comment-bang-close", "<!-- --!><img src=x onerror=alert(1)> -->"),
    ("comment-in-attr", '<a href="https://ok.example"><!--</a><img src=x onerror=alert(1)>-->'),
    ("cdata", "<![CDATA[><img src=x onerror=alert(1)>]]>"),
    ("processing-instruction", "<?xml-stylesheet href=javascript:alert(1)?>"),
    # fenced code info-string injection
    ("fence-attr-list", "```{ .lang onclick=alert(1) }\nx\n```"),
    ("fence-info-breakout", '``` js"><script>alert(1)</script>\nq\n```'),
    ("fence-class-breakout", '```python" onmouseover="alert(1)\nx\n```'),
]


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
