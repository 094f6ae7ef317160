"""Turn user-typed markdown into HTML that is safe to put in a page.

This is the only place that should do it. Markdown is rendered first and the
*final* HTML is sanitized afterwards, never the other way round:

* The renderer is cmark-gfm (GitHub's C implementation of GitHub-flavoured markdown,
  through ``cmarkgfm``): linear time on any input. Python-Markdown, used before, was
  quadratic (``"[" * 8000`` took 19 s and held a write lock; see docs/performance.md).
* cmark runs with ``CMARK_OPT_UNSAFE``: raw HTML and every link URL reach the
  sanitizer untouched, so there is exactly one sanitizer and one allowlist (nh3,
  below) rather than cmark's "safe mode" deciding some things (it drops all raw HTML
  and a few schemes) and nh3 the rest. GFM's ``tagfilter`` extension is left off on
  purpose: it would turn ``<script>…</script>`` into visible text, where nh3 removes it
  with its content, as it always did here; and it adds no safety on top of nh3, whose
  html5ever parser reads raw-text elements (``<style>``, ``<textarea>``, …) exactly as
  a browser does (the mutation-XSS vectors in tests/corpus/test_rendering.py check it).
* Sanitizing the rendered HTML means one parser (nh3/ammonia, an html5ever
  HTML5 parser) sees exactly the markup a browser will see, and one explicit
  allowlist decides which tags, attributes and URL schemes survive, however
  they were spelled (entities, case, control characters, comments, mutation
  tricks).

Two limits keep the cost bounded: sources over ``ETHER_MAX_RENDER_BYTES`` are refused
(``MarkdownTooLarge``, a 413), and HTML nested deeper than ``MAX_NESTING`` is shown as
plain text, because html5ever's tree builder is quadratic in nesting depth (it scans the
stack of open elements for every block tag: 20,000 nested ``<div>`` take 0.8 s).
"""

from __future__ import annotations

import contextlib
import html as html_lib
import re
from importlib.metadata import version
from urllib.parse import unquote

import cmarkgfm
import nh3
from cmarkgfm.cmark import Options
from django.conf import settings

from corpus.errors import MarkdownTooLarge

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

# Attributes restricted to a fixed set of values (cmark-gfm's tables emit ``align``, not
# ``style="text-align: ..."``, unless told otherwise; ``style`` is never allowed).
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
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")
_MAX_PASSES = 4


def _attribute_filter(tag: str, attribute: str, value: str) -> str | None:
    """Second pass over attributes that nh3 already allowed (URL schemes already checked)."""
    if attribute == "class":
        # Only fenced-code language hints, e.g. ``language-python``.
        kept = [name for name in value.split() if _LANGUAGE_CLASS.fullmatch(name)]
        return " ".join(kept) or None
    if attribute == "start":
        return value if value.isascii() and value.isdigit() else None
    if attribute == "href":
        if "%" not in value:
            return value  # decoded it is the same string, whose scheme nh3 has checked
        # nh3 has checked the scheme as written. cmark percent-encodes what it decodes
        # from entities (``java&#x09;script:`` becomes ``java%09script:``), which a browser
        # reads as a harmless relative path; drop it anyway when, decoded, it names a
        # scheme we do not allow: no real link looks like that, and it keeps the rule
        # "a hostile link loses its href" independent of how the renderer escapes.
        decoded = _URL_NOISE.sub("", unquote(value)).strip(_C0_AND_SPACE)
        scheme = _SCHEME.match(decoded)
        return None if scheme and scheme.group(1).lower() not in URL_SCHEMES else value
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


# Raw HTML and all URLs go to nh3 (see the module docstring); VALIDATE_UTF8 because
# cmark must never see a broken sequence, whatever the caller passed.
CMARK_OPTIONS = Options.CMARK_OPT_UNSAFE | Options.CMARK_OPT_VALIDATE_UTF8
# No footnotes (their ids and <section>/<sup> are not allowed) and no task lists
# (<input> is not allowed): "- [ ] item" stays text, as it always was here.
CMARK_EXTENSIONS = ("table", "strikethrough", "autolink")
# Stored beside rendered HTML (DocumentVersion.html_renderer): HTML from another version
# of the renderer, the sanitizer or this policy is rendered again on read. Bump the last
# part whenever the allowlist or the pipeline changes.
RENDERER = f"cmarkgfm {version('cmarkgfm')}; nh3 {nh3.__version__}; policy 1"

# Deeper than this (by the estimate of ``nesting_depth``) the HTML is not handed to
# html5ever: GitHub's own sanitizer parser (Nokogiri's gumbo) stops at 400; real
# documents stay far below 100 (a list in a list in a quote is 6).
MAX_NESTING = 128
_VOID_ELEMENTS = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "keygen", "link", "meta"}
    | {"param", "source", "track", "wbr"}
)
_TAG = re.compile(r"<(/?)([A-Za-z][^\s/>]*)")
# An element with no tag inside, closed by its own name: ``<td>b</td>``. Possessive
# quantifiers, so a long unclosed tag cannot make the scan backtrack.
_LEAF = re.compile(r"<([A-Za-z][^\s/>]*+)[^<>]*+>[^<]*+</\1>")
_LEAF_PASSES = 2


def render_limit() -> int:
    return settings.ETHER_MAX_RENDER_BYTES


def check_renderable(text: str) -> None:
    """Raises ``MarkdownTooLarge`` for a source over ``ETHER_MAX_RENDER_BYTES`` (UTF-8)."""
    limit = render_limit()
    # Every character is 1 to 4 bytes: most texts are decided without encoding them.
    if len(text) * 4 <= limit:
        return
    size = len(text) if len(text) > limit else len(text.encode("utf-8", "replace"))
    if size > limit:
        raise MarkdownTooLarge(
            f"This markdown is {size} bytes; at most {limit} bytes are rendered "
            "(ETHER_MAX_RENDER_BYTES).",
            extra={"bytes": size, "limit": limit},
        )


def nesting_depth(html: str, stop_above: int | None = None) -> int:
    """An upper bound of how deep html5ever will nest the elements of ``html``.

    A close tag counts only when it closes the element on top, spelled the same: a stray
    or misnested one (``<span><div></span>``) never lowers the count, though html5ever
    may ignore it and keep nesting. Unclosed ``<p>`` or ``<li>`` count as nested although
    html5ever closes them: the bound errs on the deep side.

    Linear, and mostly at C speed: leaf elements are removed by a regex first (each pass
    lowers the depth by one at most, so the passes are added back), which leaves little
    for the Python walk over the remaining tags; ``stop_above`` ends that walk early.
    """
    tags = html.count("<")
    if tags <= MAX_NESTING:
        return tags  # a short document: no walk needed
    passes = 0
    for _ in range(_LEAF_PASSES):
        html, removed = _LEAF.subn("", html)
        if not removed:
            break
        passes += 1
    stack: list[str] = []
    deepest = 0
    for match in _TAG.finditer(html):
        close, name = match.groups()
        if not close:
            if name.lower() in _VOID_ELEMENTS:
                continue
            stack.append(name)
            if len(stack) > deepest:
                deepest = len(stack)
                if stop_above is not None and deepest + passes > stop_above:
                    break
        elif stack and stack[-1] == name:
            stack.pop()
    return deepest + passes


def _plain_text(text: str) -> str:
    """The source itself, escaped, as preformatted text: what a too-deep document shows."""
    return "<pre>" + html_lib.escape(text, quote=False) + "</pre>"


def render_markdown(text: str) -> str:
    """Render user markdown to sanitized HTML; ``MarkdownTooLarge`` past the limit.

    Linear in the size of ``text``; docs/performance.md has the measured worst cases.
    """
    return sanitize_html(unsanitized_html(text))


def unsanitized_html(text: str) -> str:
    """cmark's HTML of ``text``, before the sanitizer: what ``render_markdown`` cleans (and
    ``corpus.stripping`` compares with the result). ``MarkdownTooLarge`` past the limit."""
    check_renderable(text)
    # Lone surrogates (legal in JSON "\\ud800") make both libraries raise on encode.
    text = text.encode("utf-8", "replace").decode("utf-8")
    html = cmarkgfm.markdown_to_html_with_extensions(
        text, options=CMARK_OPTIONS, extensions=list(CMARK_EXTENSIONS)
    )
    # cmark ends every block with a newline; the one after the last block is noise.
    html = html.rstrip("\n")
    if nesting_depth(html, stop_above=MAX_NESTING) > MAX_NESTING:
        html = _plain_text(text)
    return html


def render_for_display(text: str) -> str:
    """``render_markdown`` for text already stored: never refuses, so a page still shows a
    document written by the server itself (a task document of a long prompt) or kept from
    before the limit was lowered. Past the limit it shows the first
    ``ETHER_MAX_RENDER_BYTES`` as plain text, so the cost stays that of the limit; the
    whole body is still the API's ``body``."""
    try:
        return render_markdown(text)
    except MarkdownTooLarge:
        encoded = text.encode("utf-8", "replace")
        head = encoded[: render_limit()].decode("utf-8", "ignore")
        note = (
            f"<p>{len(encoded):,} bytes: only the first {len(head.encode()):,} are shown "
            "(ETHER_MAX_RENDER_BYTES).</p>"
        )
        return sanitize_html(_plain_text(head) + note)


class Renders:
    """Markdown rendered for one request before its write transaction opens.

    A service that stores HTML inside a transaction only looks its source up here
    (``get``) and never renders: on SQLite every transaction holds the one write lock
    from its first statement, so a render inside it stalls every other org's writes. A
    source the caller did not render first is stored without HTML and rendered on
    its first read instead.
    """

    def __init__(self) -> None:
        self._html: dict[str, str] = {}

    def render(self, text: str) -> str:
        """The HTML of ``text`` (``MarkdownTooLarge`` past the limit), rendered at most once."""
        html = self._html.get(text)
        if html is None:
            html = self._html[text] = render_markdown(text)
        return html

    def warm(self, text: object) -> None:
        """``render`` for a value not validated yet: anything but a renderable string is
        left for the handler to refuse, with the request's own error."""
        if isinstance(text, str):
            with contextlib.suppress(MarkdownTooLarge):
                self.render(text)

    def get(self, text: str) -> str | None:
        return self._html.get(text)

    def put(self, text: str, html: str) -> None:
        """HTML rendered earlier by this renderer (an old version's, for a restore)."""
        self._html[text] = html
