"""The Content-Security-Policy in a real browser: the API docs and the admin still work,
and Chromium reports no violation (Debian's Chromium through Playwright, as in
tests/browser)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect, sync_playwright

from tests.browser.test_admin_preview import CHROMIUM, CHROMIUM_ARGS, PASSWORD

pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Chromium is not installed"),
    pytest.mark.django_db(transaction=True),
]


def test_swagger_ui_and_admin_render_without_policy_violations(live_server, django_user_model):
    django_user_model.objects.create_superuser("root", "root@example.com", PASSWORD)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page()
            console: list[str] = []
            page.on("console", lambda message: console.append(message.text))
            page.goto(f"{live_server.url}/api/docs/")
            # Swagger UI ran (its script is a file), fetched the schema and drew the routes.
            expect(page.locator(".opblock").first).to_be_visible(timeout=20000)
            claim = page.locator("[data-path='/api/harness/tasks/{task_id}/claim']")
            expect(claim).to_be_visible()
            page.goto(f"{live_server.url}/admin/login/")
            page.fill("#id_username", "root")
            page.fill("#id_password", PASSWORD)
            page.click("[type=submit]")
            # The themed admin (django-unfold) ran its Alpine components: the sidebar's
            # search box is drawn by them.
            expect(page.get_by_text("Ether", exact=True).first).to_be_visible()
            page.goto(f"{live_server.url}/admin/tasks/task/")
            expect(page.locator("#changelist")).to_be_visible()
        finally:
            browser.close()
    violations = [text for text in console if "Content Security Policy" in text or "Alpine" in text]
    assert not violations, violations
