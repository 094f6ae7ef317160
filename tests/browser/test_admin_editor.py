"""The themed admin in a real browser (Debian's Chromium through Playwright, against the
live test server): the document editor (CodeMirror), the sanitizer's notice, the
word-level diff, the restore preview, one message per save, no favicon 404, and no
Content-Security-Policy violation or console error on any admin page."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from corpus.models import Document, DocumentVersion
from corpus.services import document_create, document_save
from tests import factories
from tests.browser.harness import outside_the_browser_loop as orm
from tests.browser.test_admin_preview import CHROMIUM, CHROMIUM_ARGS, PASSWORD

pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Chromium is not installed"),
    pytest.mark.django_db(transaction=True),
]

ARTIFACTS = Path(os.environ.get("ETHER_ARTIFACTS", "var/artifacts"))
LONG_LINE = "This line is long on purpose, " * 12


class Watched:
    """Everything the browser complained about: console errors and warnings (Alpine's
    expression errors are warnings), uncaught errors, CSP violations, 4xx/5xx answers."""

    def __init__(self, page: Page) -> None:
        self.problems: list[str] = []
        page.on(
            "console",
            lambda m: (
                self.problems.append(f"console.{m.type}: {m.text}")
                if m.type in ("error", "warning")
                else None
            ),
        )
        page.on("pageerror", lambda e: self.problems.append(f"pageerror: {e}"))
        page.on(
            "response",
            lambda r: self.problems.append(f"{r.status} {r.url}") if r.status >= 400 else None,
        )


@pytest.fixture
def admin_page(live_server, django_user_model) -> Iterator[tuple[Page, Watched, Any]]:
    django_user_model.objects.create_superuser("root", "root@example.com", PASSWORD)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            watched = Watched(page)
            page.goto(f"{live_server.url}/admin/login/?next=/admin/")
            page.fill("#id_username", "root")
            page.fill("#id_password", PASSWORD)
            page.click("[type=submit]")
            page.wait_for_url("**/admin/")
            yield page, watched, live_server
        finally:
            browser.close()


@pytest.fixture
def doc(db) -> Document:
    org = factories.make_org("acme")
    factories.make_user(org, "member")
    project = factories.make_repo(org).project
    return document_create(
        org=org, kind="project", project=project, title="Plan", body="# Plan\n\nfirst line\n"
    )


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"admin-{name}.png"))


def test_editor_types_indents_with_tab_leaves_with_escape_and_the_preview_follows(doc, admin_page):
    page, watched, server = admin_page
    page.goto(f"{server.url}/admin/corpus/document/{doc.pk}/change/")
    editor = page.locator(".md-editor .cm-content")
    expect(editor).to_be_visible()
    assert page.locator("textarea[name=body]").is_hidden()  # CodeMirror edits it
    preview = page.locator(".md-editor__preview")
    expect(preview.locator("h1")).to_have_text("Plan")

    editor.click()
    page.keyboard.press("Control+End")
    # Enter in a list continues it (CodeMirror's markdown mode types the next "- ").
    page.keyboard.type("\n## Steps\n\n- one\ntwo")
    page.keyboard.press("Tab")  # indents the list item instead of leaving the editor
    expect(preview.locator("h2")).to_have_text("Steps")
    expect(preview.locator("ul ul li")).to_have_text("two")  # the indent made it a sublist
    body = page.locator("textarea[name=body]").input_value()
    assert body.endswith("- one\n  - two")
    assert page.evaluate("document.activeElement.classList.contains('cm-content')")

    # Escape, then Tab: the focus leaves the editor, and the text is unchanged.
    page.keyboard.press("Escape")
    page.keyboard.press("Tab")
    assert not page.evaluate("document.activeElement.closest('.cm-editor') !== null")
    assert page.locator("textarea[name=body]").input_value() == body

    # A long document: scrolling the editor to its end scrolls the preview to its end.
    editor.click()
    page.keyboard.press("Control+End")
    page.keyboard.type("".join(f"\n\nParagraph {n}" for n in range(60)))
    expect(preview).to_contain_text("Paragraph 59")
    scroller = page.locator(".md-editor .cm-scroller")
    scroller.evaluate("el => { el.scrollTop = el.scrollHeight; }")
    page.wait_for_function(
        "() => { const p = document.querySelector('.md-editor__preview');"
        " return p.scrollTop > 0 && p.scrollTop >= p.scrollHeight - p.clientHeight - 40; }"
    )
    scroller.evaluate("el => { el.scrollTop = 0; }")
    page.wait_for_function("() => document.querySelector('.md-editor__preview').scrollTop < 5")
    shot(page, "editor")
    assert watched.problems == []


def test_stripped_html_is_reported_in_the_preview_and_after_the_save(doc, admin_page):
    page, watched, server = admin_page
    page.goto(f"{server.url}/admin/corpus/document/{doc.pk}/change/")
    notice = page.locator(".md-editor__notice")
    expect(page.locator(".md-editor__preview h1")).to_have_text("Plan")
    expect(notice).to_be_hidden()
    page.locator(".md-editor .cm-content").click()
    page.keyboard.press("Control+End")
    page.keyboard.type("\n<details>secret</details>\n\n[link](javascript:alert(1))\n")
    expect(notice).to_be_visible()
    expect(notice).to_contain_text("<details>")
    expect(notice).to_contain_text("href of <a>")
    shot(page, "stripped-notice")

    page.click("[name=_continue]")
    page.wait_for_load_state()
    expect(page.get_by_text("Saved project.md as version 2.")).to_have_count(1)
    expect(page.get_by_text("removed by the sanitizer").first).to_be_visible()
    # One message for the save: Django's own "was changed successfully" is not added.
    assert page.get_by_text("was changed successfully").count() == 0
    saved = orm(lambda: Document.objects.get(pk=doc.pk))
    assert saved.version == 2 and "<details>secret</details>" in saved.body
    # One history button: the versions.
    tools = page.locator("a[href$='/versions/']", has_text="Versions (")
    expect(tools).to_have_count(1)
    expect(tools).to_contain_text("Versions (2)")
    assert page.get_by_role("link", name="History", exact=True).count() == 0
    assert page.locator("a[href$='/history/']").count() == 0
    shot(page, "saved")
    assert watched.problems == []


def test_word_level_diff_wraps_and_restore_shows_a_preview_first(doc, admin_page):
    page, watched, server = admin_page
    orm(
        lambda: document_save(
            document=doc, body=f"# Plan\n\nfirst changed line\n{LONG_LINE}\n", user=None
        )
    )
    page.goto(f"{server.url}/admin/corpus/document/{doc.pk}/versions/")
    diff = page.locator("#diff table.word-diff")
    expect(diff).to_be_visible()
    expect(diff.locator("ins").first).to_have_text("changed ")
    assert diff.locator("tr.diff-row--change del").count() == 0  # only words were added
    # The long line wraps inside the table instead of being cut off or scrolling.
    assert diff.evaluate("t => t.scrollWidth <= t.clientWidth + 1")
    assert diff.locator("td.diff-new", has_text="long on purpose").count() == 1
    shot(page, "diff")

    page.click("a.restore-link")
    page.wait_for_url("**/versions/1/restore/")
    expect(page.locator("[data-testid=restore-preview] h1")).to_have_text("Plan")
    expect(page.locator("[data-testid=restore-preview]")).to_contain_text("first line")
    expect(page.locator("#restore-diff del").first).to_be_visible()
    shot(page, "restore-preview")
    assert orm(lambda: Document.objects.get(pk=doc.pk).version) == 2  # the preview stored nothing
    page.get_by_role("button", name="Restore version 1").click()
    page.wait_for_url("**/versions/")
    expect(page.get_by_text("Restored version 1 as version 3.")).to_have_count(1)
    restored = orm(lambda: DocumentVersion.objects.get(document=doc, version=3))
    assert restored.body == "# Plan\n\nfirst line\n"
    assert watched.problems == []


def test_admin_pages_have_no_csp_violation_console_error_or_404(doc, admin_page):
    page, watched, server = admin_page
    task = orm(lambda: factories.make_task(doc.org, title="A task with a rather long title"))
    org_id = doc.org_id
    paths = [
        "/admin/",
        "/admin/corpus/document/",
        f"/admin/corpus/document/{doc.pk}/change/",
        f"/admin/corpus/document/{doc.pk}/versions/",
        "/admin/corpus/document/add/",
        "/admin/tasks/task/",
        f"/admin/tasks/task/{task.pk}/change/",
        "/admin/tasks/harness/",
        "/admin/accounts/org/",
        f"/admin/accounts/org/{org_id}/change/",
        "/admin/auth/user/",
        "/admin/corpus/tool/add/",
    ]
    icons: set[str] = set()
    for path in paths:
        page.goto(server.url + path)
        page.wait_for_load_state("networkidle")
        icons.add(page.locator("link[rel=icon]").first.get_attribute("href") or "")
        if path in ("/admin/corpus/document/", "/admin/tasks/task/"):
            table = page.locator("#result_list")
            expect(table).to_be_visible()
            # Every column is on screen at 1440 px: nothing cut off, no sideways scroll.
            fits = table.evaluate(
                "t => t.getBoundingClientRect().right <= window.innerWidth"
                " && t.scrollWidth <= t.parentElement.clientWidth + 1"
            )
            assert fits, path
            shot(page, path.strip("/").replace("/", "-"))
    assert icons == {"/static/favicon.svg"}
    assert page.request.get(server.url + "/static/favicon.svg").status == 200
    assert page.request.get(server.url + "/favicon.ico").status == 200  # follows the redirect
    assert watched.problems == [], watched.problems
