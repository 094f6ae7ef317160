"""The admin's markdown editor in a real browser: typing fills the preview pane with the
server's sanitized rendering, and nothing typed runs.

Drives Debian's Chromium (``apt-get install chromium``) through Playwright; Playwright's
own browser downloads are never used.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from corpus.services import document_create
from tests import factories

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "a long enough password"

pytestmark = [
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="Chromium is not installed (apt-get install chromium)"
    ),
    pytest.mark.django_db(transaction=True),
]


def test_typing_markdown_shows_the_sanitized_preview(live_server, django_user_model):
    django_user_model.objects.create_superuser("root", "root@example.com", PASSWORD)
    org = factories.make_org("acme")
    doc = document_create(
        org=org, kind="project", project=factories.make_repo(org).project, body="Draft\n"
    )
    change_path = f"/admin/corpus/document/{doc.pk}/change/"

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1100})
            dialogs: list[str] = []
            page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
            assets: dict[str, int] = {}
            page.on(
                "response",
                lambda response: (
                    assets.__setitem__(response.url.rsplit("/", 1)[-1], response.status)
                    if "/static/corpus/" in response.url
                    else None
                ),
            )

            page.goto(f"{live_server.url}/admin/login/?next={change_path}")
            page.fill("#id_username", "root")
            page.fill("#id_password", PASSWORD)
            page.click("[type=submit]")
            page.wait_for_url(f"**{change_path}")

            preview = page.locator(".md-editor__preview")
            # The pane is filled from the server as soon as the page loads.
            expect(preview).to_contain_text("Draft")
            assert assets.get("editor.js") == 200 and assets.get("editor.css") == 200, assets
            assert assets.get("codemirror.js") == 200, assets

            # The editor is CodeMirror (corpus/editor.js); select all, then type over it.
            page.locator(".md-editor .cm-content").click()
            page.keyboard.press("Control+a")
            page.keyboard.press("Delete")
            # Enter in a list continues it, so the second item is typed without its "- ".
            page.keyboard.type(
                "# Hello\n\n<script>alert(1)</script>\n\n"
                "[click me](javascript:alert(2))\n\n- one\n**two**\n"
            )
            expect(preview.locator("h1")).to_have_text("Hello")
            expect(preview.locator("li strong")).to_have_text("two")
            html = preview.inner_html()
            assert "<h1>Hello</h1>" in html
            assert "<script" not in html.lower()
            assert "javascript:" not in html.lower()
            assert preview.locator("script").count() == 0
            assert page.locator(".md-editor__status").inner_text().startswith("Preview")
            assert dialogs == []

            screenshot = os.environ.get("ETHER_SCREENSHOT")
            if screenshot:
                page.screenshot(path=screenshot, full_page=True)
        finally:
            browser.close()
