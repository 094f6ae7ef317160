"""Composes a result's delivery payload: an ordered list of typed blocks (docs/delivery.md).

Pure reads of the result, its task and its run's steps; ``delivery.services`` stores what
this returns inside the result's transaction.
"""

from __future__ import annotations

from typing import Any

from api.rfc3339 import iso
from corpus.rendering import Renders, render_markdown
from delivery.judge import DOD_METHOD, dod_check, dod_sources
from delivery.links import safe_href
from delivery.verification.blocks import unverified_checks_block
from tasks.models import Result, ResultStatus, Step, Task

# At most this many timeline entries: the first HEAD and the last ones, so the page shows
# how the run started and how it ended.
TIMELINE_MAX = 20
TIMELINE_HEAD = 5
HEADLINE_CHARS = 200


def _line(text: str) -> str:
    """The first non-blank line, cut to a headline."""
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return first if len(first) <= HEADLINE_CHARS else first[: HEADLINE_CHARS - 1] + "…"


def _pr(result: Result) -> dict[str, Any] | None:
    artifact = result.artifact or {}
    pr = artifact.get("pr")
    return pr if isinstance(pr, dict) else None


def checklist_items(result: Result, steps: list[Step]) -> list[dict[str, Any]]:
    sources = dod_sources(result.working_summary, [(s.seq, s.user_message) for s in steps])
    return dod_check(result.task.definition_of_done, sources)


# Why each thing the card could claim was not checked, in the words the card shows.
NOT_CHECKED_NO_PR = (
    "No pull request was submitted: there is no change to review, and no scope to check."
)
NOT_CHECKED_DOD = (
    "Definition of done: only whether the harness mentions each item in its own words; "
    "nothing was run or verified."
)
NOT_CHECKED_GITHUB_OFF = (
    "The pull request was not verified on GitHub (no ETHER_GITHUB_TOKEN is set): that it "
    "exists, its base repository, head branch and commit, its state and its checks are "
    "unknown."
)
NOT_CHECKED_GITHUB_PENDING = "The pull request is being verified on GitHub."


def verdict(
    task: Task, pr: dict[str, Any] | None, items: list[dict[str, Any]], *, pr_check: str
) -> dict[str, Any]:
    """What was checked and how (CONTRACT.md §7). ``scope`` is ``verified`` only for a
    submitted PR (the judge checked its URL and branch before storing the result) and
    ``no_pr`` otherwise: there is never an in-scope mark without a PR. ``pr_check`` is
    the GitHub check's state (``delivery.verification``); ``not_checked`` says plainly
    what nobody checked."""
    mentioned = sum(1 for item in items if item["status"] == "mentioned")
    not_checked: list[str] = []
    if pr is not None:
        # A PR outside the scope never gets this far: the judge refused the result.
        scope = (
            f"Pull request #{pr['number']} is in {task.repo.full_name} on branch "
            f"{pr['branch']}, inside {task.branch_scope} (checked by its URL and branch)."
        )
        if pr_check == "not_configured":
            not_checked.append(NOT_CHECKED_GITHUB_OFF)
        elif pr_check == "pending":
            not_checked.append(NOT_CHECKED_GITHUB_PENDING)
    else:
        scope = "No pull request was submitted."
        not_checked.append(NOT_CHECKED_NO_PR)
    if items:
        checklist = (
            f"{mentioned} of {len(items)} definition-of-done items mentioned by the harness "
            "(not verified)."
        )
        not_checked.append(NOT_CHECKED_DOD)
    else:
        checklist = "The task has no definition of done."
    return {
        "scope": "verified" if pr is not None else "no_pr",
        "pr_check": pr_check if pr is not None else "no_pr",
        "summary": f"{scope} {checklist}",
        "checklist_mentioned": mentioned,
        "checklist_total": len(items),
        "not_checked": not_checked,
    }


def outcome_block(
    result: Result, pr: dict[str, Any] | None, items: list[dict[str, Any]], *, pr_check: str
) -> dict[str, Any]:
    status = result.status
    question = reason = None
    choices: list[str] = []
    interrupt_id = None
    if status == ResultStatus.SUBMITTED:
        headline = (
            f"Pull request #{pr['number']} is ready for review"
            if pr
            else "Submitted without a pull request"
        )
    elif status == ResultStatus.BLOCKED:
        question = result.question
        interrupt_id = result.response.get("interrupt_id")
        headline = _line(question)
    else:
        reason = result.no_changes_reason
        headline = _line(reason)
    return {
        "type": "outcome",
        "status": status,
        "headline": headline,
        "verdict": verdict(result.task, pr, items, pr_check=pr_check),
        "agent_status": result.agent_status,
        "question": question,
        "choices": choices,
        "interrupt_id": interrupt_id,
        "reason": reason,
    }


def hero_block(task: Task, pr: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "type": "hero",
        "title": task.title,
        # Pages link only what passed delivery.links; the PR's url passed the judge already.
        "repository": {"name": task.repo.full_name, "url": safe_href(task.repo.url)},
        "branch_scope": task.branch_scope,
        "pr": None
        if pr is None
        else {
            "number": pr["number"],
            "url": pr["url"],
            "branch": pr["branch"],
            "title": pr.get("title") or None,
        },
    }


def summary_markdown(
    *, status: str, working_summary: str, agent_status: str, no_changes_reason: str
) -> str | None:
    """The markdown of the summary block (None: a blocked result has none)."""
    if status == ResultStatus.BLOCKED:
        return None
    if status == ResultStatus.NO_CHANGES:
        return working_summary.strip() or no_changes_reason
    return working_summary.strip() or agent_status.strip() or "_The harness left no summary._"


def summary_block(markdown: str, renders: Renders | None = None) -> dict[str, Any]:
    # Rendered by delivery_result_submit before the result's transaction opened; rendering
    # here (inside it, under the write lock) is only for a caller that did not.
    html = renders.get(markdown) if renders is not None else None
    if html is None:
        html = render_markdown(markdown)
    return {"type": "summary", "markdown": markdown, "html": html}


def checklist_block(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "checklist", "method": DOD_METHOD, "items": items}


def timeline_block(steps: list[Step]) -> dict[str, Any]:
    """The run's steps, condensed: identical consecutive steps (same phase and message)
    become one entry with ``repeat``; past ``TIMELINE_MAX`` entries the middle is cut
    (``omitted`` counts the entries cut)."""
    entries: list[dict[str, Any]] = []
    for step in steps:
        last = entries[-1] if entries else None
        if last and (last["phase"], last["user_message"]) == (step.phase, step.user_message):
            last["repeat"] += 1
            continue
        entries.append(
            {
                "seq": step.seq,
                "ts": iso(step.created_at),
                "phase": step.phase,
                "user_message": step.user_message,
                "repeat": 1,
            }
        )
    omitted = max(0, len(entries) - TIMELINE_MAX)
    if omitted:
        entries = entries[:TIMELINE_HEAD] + entries[-(TIMELINE_MAX - TIMELINE_HEAD) :]
    return {
        "type": "timeline",
        "steps": entries,
        "total": len(steps),
        "shown": len(entries),
        "omitted": omitted,
    }


def reopen_action(task: Task) -> dict[str, Any]:
    return {
        "kind": "reopen",
        "label": "Reopen the task",
        "method": "POST",
        "url": f"/api/tasks/{task.public_id}/reopen",
    }


def feedback_action(task: Task) -> dict[str, Any]:
    return {
        "kind": "feedback",
        "label": "Rate this delivery",
        "method": "POST",
        "url": f"/api/tasks/{task.public_id}/feedback",
        "fields": ["rating", "comment"],
        "choices": {"rating": ["up", "down"]},
    }


def actions_block(result: Result, pr: dict[str, Any] | None) -> dict[str, Any]:
    task = result.task
    actions: list[dict[str, Any]] = []
    if result.status == ResultStatus.BLOCKED:
        actions.append(
            {
                "kind": "answer",
                "label": "Answer the question",
                "method": "POST",
                "url": f"/api/tasks/{task.public_id}/answer",
                "fields": ["answer"],
                "choices": {},
            }
        )
    else:
        if pr is not None:
            actions.append(
                {"kind": "open_pr", "label": f"Open pull request #{pr['number']}", "url": pr["url"]}
            )
        actions += [reopen_action(task), feedback_action(task)]
    return {"type": "actions", "actions": actions}


def compose(
    result: Result, *, renders: Renders | None = None, checks: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """The blocks of this result, in the order of ``delivery.blocks.ORDER``.

    ``checks``: the PR's ``checks`` block (``delivery.verification``); without one, a
    submitted PR gets a ``checks`` block that says it was not verified (no token) or is
    being verified (``github_configured``)."""
    task = result.task
    steps = list(Step.objects.filter(run=result.run).order_by("seq"))
    pr = _pr(result) if result.status == ResultStatus.SUBMITTED else None
    items = checklist_items(result, steps)
    if pr is not None and checks is None:
        checks = unverified_checks_block()
    pr_check = checks["state"] if checks is not None else "no_pr"
    outcome = outcome_block(result, pr, items, pr_check=pr_check)
    timeline = timeline_block(steps)
    actions = actions_block(result, pr)
    summary = summary_markdown(
        status=result.status,
        working_summary=result.working_summary,
        agent_status=result.agent_status,
        no_changes_reason=result.no_changes_reason,
    )
    if summary is None:
        return [outcome, timeline, actions]
    if result.status == ResultStatus.NO_CHANGES:
        return [outcome, summary_block(summary, renders), timeline, actions]
    return [
        outcome,
        hero_block(task, pr),
        *([checks] if checks is not None else []),
        summary_block(summary, renders),
        checklist_block(items),
        timeline,
        actions,
    ]


def with_checks(
    blocks: list[dict[str, Any]], result: Result, checks: dict[str, Any]
) -> list[dict[str, Any]]:
    """A stored payload with its ``checks`` block replaced and the outcome's verdict
    recomputed from it (the rest, summary HTML included, is kept as stored)."""
    pr = _pr(result)
    items = next((b["items"] for b in blocks if b.get("type") == "checklist"), [])
    out = []
    for block in blocks:
        if block.get("type") == "outcome":
            block = outcome_block(result, pr, items, pr_check=checks["state"])
        elif block.get("type") == "checks":
            block = checks
        out.append(block)
    return out
