"""Issue 16 in a real browser: a no-PR "submitted" result never looks green; with a
(fake) GitHub the card shows the PR's checks, live; the working-memory page shows what
each compaction kept and dropped, and an admin promotes a note into the repository's
memory after seeing the diff."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, expect

from tests.browser.chromium import launched
from tests.browser.harness import (
    RemoteHarness,
    expect_live,
    mark_page,
    shoot,
    sign_in,
    still_marked,
)
from tests.browser.test_admin_preview import CHROMIUM
from tests.delivery.fake_github import HEAD_SHA, check_runs_json, fake_github, pull_json
from tests.servers import Server, served

pytestmark = [
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="Chromium is not installed (apt-get install chromium)"
    ),
    pytest.mark.django_db(transaction=True),
]

DOD = ["GET /healthz answers 200", "The response includes the build version", "Docs updated"]


@pytest.fixture
def member(world: Any) -> Any:
    from tests.browser.test_admin_preview import PASSWORD

    world.user.set_password(PASSWORD)
    world.user.is_staff = True  # an org admin: may promote notes
    world.user.save()
    return world.user


@pytest.fixture
def task(world: Any) -> Any:
    return world.task(definition_of_done=DOD)


@pytest.fixture
def github(task: Any) -> Iterator[Any]:
    with fake_github() as fake:
        full = task.repo.full_name
        fake.answer(f"/repos/{full}/pulls/7", 200, pull_json(full, 7, branch="ether/healthz"))
        fake.answer(f"/repos/{full}/commits/{HEAD_SHA}/check-runs", 200, check_runs_json())
        yield fake


@pytest.fixture
def server(tmp_path: Path, github: Any) -> Iterator[Server]:
    with served(
        tmp_path,
        ETHER_WORKING_BUDGET_BYTES="2048",
        ETHER_GITHUB_TOKEN="ghs_browser_test",
        ETHER_GITHUB_API_URL=github.url,
    ) as running:
        yield running


@pytest.fixture
def browser(server: Server, member: Any, task: Any) -> Iterator[Browser]:
    with launched() as browser:
        yield browser


def test_a_no_pr_result_that_copies_the_definition_of_done_never_looks_green(
    server, browser, world, member, task
):
    harness = RemoteHarness(server, world, task.public_id)
    watched = sign_in(browser, server, f"/tasks/{task.public_id}")
    page = watched.page
    expect_live(page)
    harness.claim()
    harness.post(
        "result",
        {
            "run_id": harness.run_id,
            "status": "submitted",
            "agent_status": "Did nothing",
            "working_summary": "\n".join(f"- [ ] {item}" for item in DOD),
        },
    )
    card = page.locator("#delivery .delivery-card")
    expect(card).to_be_visible()
    outcome = card.locator("[data-block=outcome]")
    expect(outcome.locator(".outcome__headline")).to_have_text("Submitted without a pull request")
    expect(outcome.locator(".status")).to_have_text("Submitted")
    expect(outcome.locator(".status--submitted")).to_have_count(0)
    expect(card.locator(".pill--ok")).to_have_count(0)
    expect(card.locator("[data-fact=scope]")).to_have_text("No pull request")
    expect(card.locator("[data-fact=checklist]")).to_have_text("Mentioned 3/3 (not verified)")
    expect(card.locator(".outcome__not-checked")).to_contain_text("No pull request was submitted")
    expect(card.locator(".outcome__not-checked")).to_contain_text("nothing was run or verified")
    statuses = card.locator(".checklist__status")
    expect(statuses).to_have_count(3)
    expect(statuses).to_have_text(["Mentioned, not verified"] * 3)
    expect(card.locator(".checklist__evidence").first).to_contain_text("“- [ ] GET /healthz")
    text = card.inner_text()
    assert "✓" not in text and "In scope" not in text and "met" not in text.split()
    expect(card.locator("[data-block=checks]")).to_have_count(0)
    shoot(page, "task-delivered-no-pr")
    page.reload()
    expect(page.locator("#delivery .pill--ok")).to_have_count(0)
    expect(page.locator("#delivery [data-fact=scope]")).to_have_text("No pull request")
    assert watched.errors == []


def test_with_a_fake_github_the_card_shows_the_prs_checks_live(
    server, browser, world, member, task, github
):
    harness = RemoteHarness(server, world, task.public_id)
    watched = sign_in(browser, server, f"/tasks/{task.public_id}")
    page = watched.page
    expect_live(page)
    mark_page(page)
    harness.claim()
    harness.submit(task.repo.url)
    card = page.locator("#delivery .delivery-card")
    checks = card.locator("[data-block=checks]")
    expect(checks).to_have_attribute("data-state", "verified", timeout=15000)
    expect(card).to_have_attribute("data-version", "2")
    expect(card.locator("[data-fact=pr_check]")).to_have_text("Verified on GitHub")
    expect(card.locator("[data-fact=scope]")).to_have_text("Scope verified")
    facts = checks.locator(".checks__fact")
    expect(facts).to_have_count(5)
    expect(checks.locator("[data-fact=base_repository]")).to_contain_text("verified")
    expect(checks.locator("[data-fact=head_sha]")).to_contain_text("not checked")
    runs = checks.locator(".checks__run")
    expect(runs).to_have_text(["test (3.12): success", "lint: failure", "build: in_progress"])
    expect(runs.first.locator("a")).to_have_attribute(
        "href", "https://github.com/acme/widgets/runs/4"
    )
    expect(checks.locator(".checks__summary")).to_contain_text("2 of 3 check runs completed")
    assert still_marked(page), "the page reloaded"
    assert [path.split("?")[0] for _, path, _ in github.requests] == [
        f"/repos/{task.repo.full_name}/pulls/7",
        f"/repos/{task.repo.full_name}/commits/{HEAD_SHA}/check-runs",
    ]
    shoot(page, "task-delivered-checks")
    assert watched.errors == []


def test_the_working_memory_page_shows_kept_and_dropped_and_promotes_a_note(
    server, browser, world, member, task
):
    harness = RemoteHarness(server, world, task.public_id)
    for n in range(4):
        if n:
            status, _ = server.call("POST", f"/api/tasks/{task.public_id}/reopen", world.token, {})
            assert status == 200
        harness.claim()
        note = f"# Attempt {n + 1}\n\n## Decisions\n\n- decided to try idea {n + 1}\n\n"
        harness.post(
            "result",
            {
                "run_id": harness.run_id,
                "status": "no_changes",
                "agent_status": "Nothing to change",
                "no_changes_reason": "Already fixed upstream.",
                "working_summary": note + f"Notes on attempt {n + 1}. " * 40,
            },
        )
    watched = sign_in(browser, server, f"/tasks/{task.public_id}/compaction")
    page = watched.page
    fold = page.locator("#compactions > li").first
    expect(fold.locator(".fold__account")).to_contain_text("Kept")
    expect(fold.locator(".fold__account")).to_contain_text("dropped")
    # Each folded note says what of it was lost (or that it was kept whole).
    expect(fold.locator(".fold__inputs li").first).to_contain_text("working/run_")
    expect(fold.locator(".fold__inputs li .fold__lost").first).to_contain_text(" B in ")
    expect(page.locator("#memory .markdown")).to_contain_text("decided to try idea 1")
    expect(page.locator("#memory .markdown")).to_contain_text("omitted: working/run_")

    first = page.locator("#working-docs tbody tr").first
    first.locator("summary").click()
    promote = first.locator(".promote")
    promote.locator(".promote__text").fill("- decided to try idea 1")
    promote.locator(".promote__preview").click()
    diff = promote.locator(".promote__diff")
    expect(diff).to_be_visible()
    expect(diff.locator(".diff-add").last).to_have_text("+- decided to try idea 1\n")
    shoot(page, "compaction-promote-diff")
    promote.locator(".promote__save").click()
    expect(promote.locator(".promote__result")).to_have_text("Saved into repo.md (version 1).")
    status, listed = server.call("GET", "/api/context/docs?kind=repo", world.token, None)
    assert status == 200
    (doc,) = listed["data"]
    assert doc["path"] == "repo.md" and doc["version"] == 1
    shoot(page, "compaction-promoted")
    assert watched.errors == []
