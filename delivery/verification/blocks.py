"""The ``checks`` block: what GitHub said about the submitted PR (docs/delivery.md)."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from api.rfc3339 import iso
from delivery.links import safe_href
from delivery.verification.github import PullRequest

# The check's states. ``not_configured``: no token, nothing asked. ``pending``: asked
# after commit, no answer yet. ``unavailable``: GitHub could not answer (retried).
STATES = ["not_configured", "pending", "verified", "mismatch", "not_found", "unavailable"]
FACTS = ["exists", "base_repository", "head_branch", "head_sha", "state"]

_SUMMARIES = {
    "not_configured": "Not verified on GitHub: no ETHER_GITHUB_TOKEN is set.",
    "pending": "Being verified on GitHub.",
}


def github_configured() -> bool:
    return bool(settings.ETHER_GITHUB_TOKEN)


def _fact(name: str, status: str, expected: str | None, actual: str | None) -> dict[str, Any]:
    return {"name": name, "status": status, "expected": expected, "actual": actual}


def unverified_checks_block() -> dict[str, Any]:
    """The block before GitHub answered: ``pending`` with a token, else ``not_configured``."""
    state = "pending" if github_configured() else "not_configured"
    return {
        "type": "checks",
        "state": state,
        "summary": _SUMMARIES[state],
        "facts": [_fact(name, "not_checked", None, None) for name in FACTS],
        "check_runs": [],
        "checked_at": None,
    }


def unavailable_block(reason: str, *, at: Any, retry_at: Any | None) -> dict[str, Any]:
    when = f" Retried after {iso(retry_at)}." if retry_at is not None else " Retried later."
    block = unverified_checks_block()
    block.update(state="unavailable", summary=f"GitHub could not be asked: {reason}.{when}")
    block["checked_at"] = iso(at)
    return block


def not_found_block(repository: str, number: int, *, at: Any) -> dict[str, Any]:
    block = unverified_checks_block()
    block.update(
        state="not_found",
        summary=f"GitHub has no pull request #{number} in {repository}.",
        checked_at=iso(at),
    )
    block["facts"][0] = _fact("exists", "mismatch", f"{repository}#{number}", None)
    return block


def verified_block(
    *,
    expected_repository: str,
    expected_branch: str,
    expected_sha: str | None,
    pr: PullRequest,
    check_runs: list[dict[str, Any]],
    at: Any,
) -> dict[str, Any]:
    """Each fact compared with what the harness claimed; ``verified`` when none differs."""
    actual_state = "merged" if pr.merged else pr.state
    facts = [
        _fact("exists", "verified", f"#{pr.number}", f"#{pr.number}"),
        _fact(
            "base_repository",
            "verified" if pr.base_repository.lower() == expected_repository.lower() else "mismatch",
            expected_repository,
            pr.base_repository or None,
        ),
        _fact(
            "head_branch",
            "verified" if pr.head_branch == expected_branch else "mismatch",
            expected_branch,
            pr.head_branch or None,
        ),
        _fact(
            "head_sha",
            "not_checked"
            if not expected_sha
            else ("verified" if pr.head_sha.startswith(expected_sha.lower()) else "mismatch"),
            expected_sha or None,
            pr.head_sha or None,
        ),
        # A closed, unmerged PR delivers nothing.
        _fact(
            "state",
            "verified" if actual_state in ("open", "merged") else "mismatch",
            "open or merged",
            actual_state or None,
        ),
    ]
    wrong = [f["name"] for f in facts if f["status"] == "mismatch"]
    runs = [{**run, "url": safe_href(run["url"]) if run["url"] else None} for run in check_runs]
    done = [r for r in runs if r["status"] == "completed"]
    failed = [r for r in done if r["conclusion"] not in ("success", "neutral", "skipped")]
    if runs:
        checks = (
            f"{len(done)} of {len(runs)} check runs completed on {pr.head_sha[:12]}, "
            f"{len(failed)} not successful."
        )
    else:
        checks = f"No check runs on {pr.head_sha[:12] or 'its head commit'}."
    if wrong:
        summary = "Verified on GitHub, and it differs from the result: " + ", ".join(wrong) + "."
    else:
        summary = f"Verified on GitHub: pull request #{pr.number} is {actual_state}."
    return {
        "type": "checks",
        "state": "mismatch" if wrong else "verified",
        "summary": f"{summary} {checks}",
        "facts": facts,
        "check_runs": runs,
        "checked_at": iso(at),
    }
