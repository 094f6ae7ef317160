"""The safety check of rendered HTML that the rendering tests share: it parses the output
with html.parser rather than grepping it, and the allowlists are restated here on purpose:
the tests are the spec, not a copy of the module's constants.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

from corpus.rendering import render_markdown

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
