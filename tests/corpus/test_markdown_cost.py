"""Issue 12: hostile markdown can no longer stall the server or other orgs' writes.

Python-Markdown was quadratic (``"[" * 8000`` took 19 s) and rendered inside write
transactions. These tests assert behaviour, never time: the new renderer answers on the
pathological corpus with safe HTML, refuses sources over ETHER_MAX_RENDER_BYTES with a
413, shows too-deep nesting as text, renders each document version once and never while
a write transaction is open. The timings are in bench/bench_markdown.py and
docs/performance.md. (The result route's half is tests/delivery/test_result_markdown.py.)
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any

import cmarkgfm
import pytest
from django.db import connection

from bench.bench_markdown import PATHOLOGICAL
from corpus.models import Document, DocumentVersion
from corpus.rendering import MAX_NESTING, RENDERER, nesting_depth, render_markdown, sanitize_html
from tests.corpus.documents_support import DOCS, put, stored
from tests.corpus.html_safety import problems
from tests.helpers import problem


@contextlib.contextmanager
def hang_guard(seconds: int = 60) -> Iterator[None]:
    """Turns a hang into a failure. Not a timing assertion: the bound is hundreds of times
    what the work takes now; before the fix the same request ran for hours."""

    def expired(signum: int, frame: Any) -> None:
        raise TimeoutError(f"still rendering after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


class RenderSpy:
    """Wraps cmark's entry point: counts renders of each source and records whether a
    transaction was open on the calling thread's connection at that moment."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.real = cmarkgfm.markdown_to_html_with_extensions
        self.calls: list[tuple[str, bool]] = []
        self.hook: Any = None
        monkeypatch.setattr(cmarkgfm, "markdown_to_html_with_extensions", self)

    def __call__(self, text: str, **options: Any) -> str:
        self.calls.append((text, connection.in_atomic_block))
        if self.hook is not None:
            self.hook(text)
        return self.real(text, **options)

    def count(self, text: str) -> int:
        return sum(1 for source, _ in self.calls if source == text)

    def inside_transactions(self) -> list[str]:
        return [source[:40] for source, atomic in self.calls if atomic]


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> RenderSpy:
    return RenderSpy(monkeypatch)


def create_profile(caller: Any, body: str = "# Notes\n", **extra: Any) -> dict[str, Any]:
    response = caller.post(DOCS, {"kind": "profile", "body": body}, **extra)
    assert response.status_code == 201, response.content[:500]
    return response.json()


# --- the attack through the API ------------------------------------------------------------


def test_put_of_200k_brackets_is_refused_before_rendering(world, spy):
    doc = create_profile(world.person())
    before = stored()
    with hang_guard():
        response = put(world.person(), doc["id"], {"body": "[" * 200_000})
    body = problem(response, 413, "markdown_too_large")
    assert body["bytes"] == 200_000
    assert stored() == before
    assert spy.count("[" * 200_000) == 0


def test_put_of_brackets_up_to_the_limit_answers_with_its_html(world, settings):
    doc = create_profile(world.person())
    hostile = "[" * settings.ETHER_MAX_RENDER_BYTES
    with hang_guard():
        response = put(world.person(), doc["id"], {"body": hostile})
    assert response.status_code == 200, response.content[:500]
    body = response.json()
    assert body["html"] == "<p>" + hostile + "</p>"
    version = DocumentVersion.objects.get(document__public_id=doc["id"], version=2)
    assert (version.html, version.html_renderer) == (body["html"], RENDERER)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("keyed", [False, True], ids=["plain", "idempotency-key"])
def test_other_orgs_write_goes_on_while_a_document_renders(world, spy, keyed):
    """The render of a hostile body is held open until another org has written: if it ran
    inside the write's transaction (on SQLite, the one write lock), that write would wait
    out the busy timeout and answer 503."""
    doc = create_profile(world.person())
    hostile = "[" * 9_000
    rendering, other_done = threading.Event(), threading.Event()

    def hold(text: str) -> None:
        if text == hostile:
            rendering.set()
            other_done.wait(timeout=30)

    spy.hook = hold
    answers: dict[str, Any] = {}

    def write_hostile() -> None:
        try:
            extra = {"HTTP_IDEMPOTENCY_KEY": "hostile-1"} if keyed else {}
            if keyed:
                other = world.person()
                answers["hostile"] = other.post(DOCS, {"kind": "profile", "body": hostile}, **extra)
            else:
                answers["hostile"] = put(world.person(), doc["id"], {"body": hostile})
        finally:
            connection.close()

    if keyed:
        Document.objects.filter(public_id=doc["id"]).delete()  # the POST creates it again
    thread = threading.Thread(target=write_hostile)
    thread.start()
    try:
        assert rendering.wait(timeout=30), "the hostile body never rendered"
        answers["other"] = world.outsider().post(DOCS, {"kind": "profile", "body": "Mine."})
    finally:
        other_done.set()
        thread.join(timeout=60)
    assert not thread.is_alive()
    assert answers["other"].status_code == 201, answers["other"].content[:500]
    assert answers["hostile"].status_code in (200, 201), answers["hostile"].content[:500]
    assert answers["hostile"].json()["html"] == "<p>" + hostile + "</p>"
    assert spy.inside_transactions() == []


# --- rendered once per version, never inside a write ------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("keyed", [False, True], ids=["plain", "idempotency-key"])
def test_api_writes_render_before_their_transaction(world, spy, keyed):
    extra = {"HTTP_IDEMPOTENCY_KEY": "create-1"} if keyed else {}
    doc = create_profile(world.person(), "# One\n", **extra)
    assert put(world.person(), doc["id"], {"body": "# Two\n"}).status_code == 200
    assert spy.count("# One\n") == 1 and spy.count("# Two\n") == 1
    assert spy.inside_transactions() == []


def test_a_version_is_rendered_once_however_often_it_is_read(world, spy):
    doc = create_profile(world.person(), "# Once\n")
    for _ in range(3):
        response = world.person().get(f"{DOCS}/{doc['id']}")
        assert response.json()["html"] == "<h1>Once</h1>"
    assert spy.count("# Once\n") == 1


def test_a_version_stored_without_html_is_rendered_on_its_first_read_and_kept(world, spy):
    """Rows from before the column, or written inside another flow's transaction (task
    documents, working notes, memory), have no HTML yet: the first read renders it."""
    doc = create_profile(world.person(), "# Old\n")
    DocumentVersion.objects.filter(document__public_id=doc["id"]).update(
        html="stale <b>markup</b>", html_renderer=""
    )
    for _ in range(2):
        assert world.person().get(f"{DOCS}/{doc['id']}").json()["html"] == "<h1>Old</h1>"
    assert spy.count("# Old\n") == 2  # the create, then the first read only
    version = DocumentVersion.objects.get(document__public_id=doc["id"])
    assert (version.html, version.html_renderer) == ("<h1>Old</h1>", RENDERER)


def test_html_of_another_renderer_is_rendered_again(world):
    doc = create_profile(world.person(), "*new*")
    DocumentVersion.objects.filter(document__public_id=doc["id"]).update(
        html="<em>old renderer</em>", html_renderer="Python-Markdown 3.7"
    )
    assert world.person().get(f"{DOCS}/{doc['id']}").json()["html"] == "<p><em>new</em></p>"


# --- the limit ---------------------------------------------------------------------------------


def test_put_over_the_render_limit_is_413_and_stores_nothing(world, settings):
    doc = create_profile(world.person())
    settings.ETHER_MAX_RENDER_BYTES = 1024
    before = stored()
    response = put(world.person(), doc["id"], {"body": "é" * 600})  # 1,200 bytes
    body = problem(response, 413, "markdown_too_large")
    assert (body["bytes"], body["limit"]) == (1200, 1024)
    assert "ETHER_MAX_RENDER_BYTES" in body["detail"]
    assert stored() == before


@pytest.mark.parametrize("keyed", [False, True], ids=["plain", "idempotency-key"])
def test_post_over_the_render_limit_is_413_and_stores_nothing(world, settings, keyed):
    settings.ETHER_MAX_RENDER_BYTES = 1024
    before = stored()
    extra = {"HTTP_IDEMPOTENCY_KEY": "big-1"} if keyed else {}
    response = world.person().post(DOCS, {"kind": "profile", "body": "[" * 1025}, **extra)
    problem(response, 413, "markdown_too_large")
    assert stored() == before


def test_source_at_the_limit_renders(settings):
    settings.ETHER_MAX_RENDER_BYTES = 1024
    assert render_markdown("a" * 1024) == "<p>" + "a" * 1024 + "</p>"


def test_admin_preview_over_the_limit_is_413(admin_client, settings):
    settings.ETHER_MAX_RENDER_BYTES = 1024
    response = admin_client.post("/admin/corpus/document/preview/", {"text": "x" * 2000})
    assert response.status_code == 413
    assert response.json()["code"] == "markdown_too_large"


def test_stored_document_over_the_limit_shows_its_head_as_text(world, settings):
    """Documents the server writes itself (a task document of a long prompt) or kept from
    before the limit was lowered are not refused on read: their first
    ETHER_MAX_RENDER_BYTES show as plain text."""
    doc = create_profile(world.person(), "<b>bold</b> " * 200)
    DocumentVersion.objects.update(html_renderer="")
    settings.ETHER_MAX_RENDER_BYTES = 1024
    html = world.person().get(f"{DOCS}/{doc['id']}").json()["html"]
    assert html.startswith("<pre>&lt;b&gt;bold&lt;/b&gt; ")
    note = "<p>2,400 bytes: only the first 1,024 are shown (ETHER_MAX_RENDER_BYTES).</p>"
    assert html.endswith(note)
    assert problems(html) == []


# --- the pathological corpus: it renders, and what it renders is safe -------------------------


@pytest.mark.parametrize("case", list(PATHOLOGICAL))
def test_pathological_markdown_renders_safe_and_stable(case):
    source = PATHOLOGICAL[case](16 * 1024)
    output = render_markdown(source)
    assert problems(output) == []
    assert sanitize_html(output) == output


@pytest.mark.parametrize(
    "source",
    ["> " * 2000, "- " * 2000 + "x", "<div>" * 2000, "<ul><li>" * 1000, "<span><div></span>" * 500],
    ids=["blockquotes", "lists", "divs", "list-items", "stray-closes"],
)
def test_nesting_past_the_limit_shows_the_source_as_text(source):
    output = render_markdown(source)
    assert output.startswith("<pre>")
    assert "<blockquote>" not in output and "<div>" not in output and "<ul>" not in output
    assert problems(output) == []


def test_nesting_under_the_limit_still_renders():
    output = render_markdown("> " * 20 + "quoted")
    assert output.count("<blockquote>") == 20


def test_nesting_depth_is_an_upper_bound():
    assert nesting_depth("<p>a</p>" * 500) == 1
    assert nesting_depth("<br><hr><img src=x>" * 100) == 0
    # A close tag that does not close the element on top never lowers the count.
    assert nesting_depth("<span><div></span>" * 100) == 200
    assert nesting_depth("<div></q>" * (MAX_NESTING + 1)) == MAX_NESTING + 1
