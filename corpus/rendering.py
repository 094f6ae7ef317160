"""Turn user-typed markdown into HTML that is safe to put in a page.

This is the only place that should do it. Markdown is rendered first and the
*final* HTML is sanitized afterwards, never the other way round:

* Python-Markdown passes raw HTML through untouched and builds links from any
  URL the user typed (``[x](javascript:...)``, reference links, autolinks), so
  its output is only as safe as its input. Cleaning the markdown source instead
  would not help: the dangerous HTML is *produced* by the rendering step.
* Sanitizing the rendered HTML means one parser (nh3/ammonia, an html5ever
  HTML5 parser) sees exactly the markup a browser will see, and one explicit
  allowlist decides which tags, attributes and URL schemes survive, however
  they were spelled (entities, case, control characters, comments, mutation
  tricks).
"""

from __future__ import annotations

import re

import markdown
import nh3
from markdown.extensions.fenced_code import FencedCodeExtension
from markdown.extensions.sane_lists import SaneListExtension
from markdown.extensions.tables import TableExtension

ALLOWED_TAGS: frozenset[str] = frozenset(
    {
        *(f"h{level}" for level in range(1, 7)),
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
)

# Free-valued attributes; ``rel`` on <a> is set by nh3 itself (LINK_REL). The empty
# "*" entry matters: without it ammonia keeps its default generic attributes
# (``lang`` and ``title`` on every tag) next to this dict.
ALLOWED_ATTRIBUTES: dict[str, set[str]] = {
    "*": set(),
    "a": {"href", "title"},
    "img": {"src", "alt", "title"},
    "ol": {"start"},  # "3. third" must not render as 1.
    "pre": {"class"},
    "code": {"class"},
}

# Attributes restricted to a fixed set of values (the tables extension is told to
# emit ``align`` instead of ``style="text-align: ..."``; ``style`` is never allowed).
ALIGN_VALUES: set[str] = {"left", "center", "right"}
ALLOWED_ATTRIBUTE_VALUES: dict[str, dict[str, set[str]]] = {
    "th": {"align": ALIGN_VALUES},
    "td": {"align": ALIGN_VALUES},
}

URL_SCHEMES: frozenset[str] = frozenset({"http", "https", "mailto"})  # plus relative URLs
LINK_REL = "noopener noreferrer"
# Removed together with their text, not just unwrapped.
CLEAN_CONTENT_TAGS: frozenset[str] = frozenset({"script", "style"})

_LANGUAGE_CLASS = re.compile(r"language-[A-Za-z0-9_+#.-]+")
_IMAGE_URL = re.compile(r"https?://", re.IGNORECASE)
_URL_NOISE = re.compile(r"[\t\n\r]")
_C0_AND_SPACE = "".join(chr(c) for c in range(0x21))
_PRE_LEADING_NEWLINE = re.compile(r"(<pre(?: [^>]*)?>)\n")
_MAX_PASSES = 4


def _attribute_filter(tag: str, attribute: str, value: str) -> str | None:
    """Second pass over attributes that nh3 already allowed (URL schemes already checked)."""
    if attribute == "class":
        # Only fenced-code language hints, e.g. ``language-python``.
        kept = [name for name in value.split() if _LANGUAGE_CLASS.fullmatch(name)]
        return " ".join(kept) or None
    if attribute == "start":
        return value if value.isascii() and value.isdigit() else None
    if tag == "img" and attribute == "src":
        # Images load without a click: absolute http(s) only, no relative or mailto.
        url = _URL_NOISE.sub("", value).strip(_C0_AND_SPACE)
        return value if _IMAGE_URL.match(url) else None
    return value


def _clean(html: str) -> str:
    cleaned = nh3.clean(
        html,
        tags=set(ALLOWED_TAGS),
        clean_content_tags=set(CLEAN_CONTENT_TAGS),
        attributes=ALLOWED_ATTRIBUTES,
        tag_attribute_values=ALLOWED_ATTRIBUTE_VALUES,
        attribute_filter=_attribute_filter,
        url_schemes=set(URL_SCHEMES),
        link_rel=LINK_REL,
        strip_comments=True,
    )
    # html5ever writes these out in a form that parses back differently; write them
    # so the tree survives a reparse: a CR character (a raw CR is read as LF), a
    # leading U+FEFF (read as a byte-order mark), a newline right after <pre> (the
    # parser drops one).
    cleaned = cleaned.replace("\r", "&#13;")
    if cleaned.startswith("\ufeff"):
        cleaned = "&#65279;" + cleaned[1:]
    return _PRE_LEADING_NEWLINE.sub("\\1\n\n", cleaned)


def sanitize_html(html: str) -> str:
    """Reduce an HTML fragment to the allowlist above; idempotent on its own output.

    Some trees html5ever builds from broken markup cannot be serialized so they
    parse back the same (an <a> that table foster-parenting put inside another
    <a>), so clean again until the output is a fixed point: what a browser parses
    is then exactly what was checked.
    """
    cleaned = _clean(html)
    for _ in range(_MAX_PASSES):
        again = _clean(cleaned)
        if again == cleaned:
            break
        cleaned = again
    return cleaned


def render_markdown(text: str) -> str:
    """Render user markdown to sanitized HTML."""
    # Lone surrogates (legal in JSON "\\ud800") make both libraries raise on encode.
    text = text.encode("utf-8", "replace").decode("utf-8")
    html = markdown.markdown(
        text,
        extensions=[
            TableExtension(use_align_attribute=True),
            FencedCodeExtension(),
            SaneListExtension(),
        ],
        output_format="html",
    )
    return sanitize_html(html)
