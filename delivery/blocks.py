"""The delivery block taxonomy as JSON Schemas (draft 2020-12), one per block type.

These dicts are the source of truth that ``docs/delivery.md`` prints and the tests
validate every composed payload against. Blocks are closed (``additionalProperties:
false``) so a key added in ``compose.py`` without a schema change fails the tests instead
of reaching pages undocumented.
"""

from __future__ import annotations

from typing import Any

from delivery.verification.blocks import FACTS, STATES

STATUSES = ["submitted", "blocked", "no_changes"]
CHECK_STATES = STATES
CHECK_FACTS = FACTS

# The blocks of each result status, in order; ``hero``, ``summary`` and friends appear
# exactly where listed (docs/delivery.md).
ORDER: dict[str, list[str]] = {
    # ``checks`` only when a PR was submitted (delivery.verification).
    "submitted": ["outcome", "hero", "checks", "summary", "checklist", "timeline", "actions"],
    "no_changes": ["outcome", "summary", "timeline", "actions"],
    "blocked": ["outcome", "timeline", "actions"],
}

_STR = {"type": "string"}
_INT = {"type": "integer", "minimum": 0}
_NULLABLE_STR = {"type": ["string", "null"]}


def _block(type_: str, properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"{type_} block",
        "type": "object",
        "properties": {"type": {"const": type_}, **properties},
        "required": ["type", *required],
        "additionalProperties": False,
    }


def _object(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties) if required is None else required,
        "additionalProperties": False,
    }


OUTCOME = _block(
    "outcome",
    {
        "status": {"enum": STATUSES},
        "headline": _STR,
        # What was checked and how (CONTRACT.md §7). ``scope`` is ``verified`` only with
        # a PR (its URL and branch passed the judge); ``pr_check`` is the GitHub check's
        # state (the checks block's); ``not_checked`` says in words what nobody checked.
        "verdict": _object(
            {
                "scope": {"enum": ["verified", "no_pr"]},
                "pr_check": {"enum": ["no_pr", *CHECK_STATES]},
                "summary": _STR,
                "checklist_mentioned": _INT,
                "checklist_total": _INT,
                "not_checked": {"type": "array", "items": _STR},
            }
        ),
        # Added keys: what the harness said, and what a blocked or no_changes run needs.
        "agent_status": _STR,
        "question": _NULLABLE_STR,
        "choices": {"type": "array", "items": _STR},
        "interrupt_id": _NULLABLE_STR,
        "reason": _NULLABLE_STR,
    },
    [
        "status",
        "headline",
        "verdict",
        "agent_status",
        "question",
        "choices",
        "interrupt_id",
        "reason",
    ],
)

HERO = _block(
    "hero",
    {
        "title": _STR,
        # null when the repository's URL is not a plain link (delivery.links).
        "repository": _object({"name": _STR, "url": _NULLABLE_STR}),
        "branch_scope": _STR,
        "pr": {
            "oneOf": [
                {"type": "null"},
                _object(
                    {
                        "number": {"type": "integer", "minimum": 1},
                        "url": _STR,
                        "branch": _STR,
                        "title": _NULLABLE_STR,
                    }
                ),
            ]
        },
    },
    ["title", "repository", "branch_scope", "pr"],
)

SUMMARY = _block("summary", {"markdown": _STR, "html": _STR}, ["markdown", "html"])

CHECKLIST = _block(
    "checklist",
    {
        "method": _STR,
        "items": {
            "type": "array",
            # Never "met": a mention is the harness's word, quoted in ``evidence``.
            "items": _object(
                {
                    "text": _STR,
                    "status": {"enum": ["mentioned", "not_mentioned"]},
                    "evidence": _NULLABLE_STR,
                }
            ),
        },
    },
    ["method", "items"],
)

CHECKS = _block(
    "checks",
    {
        "state": {"enum": CHECK_STATES},
        "summary": _STR,
        # exists, base_repository, head_branch, head_sha, state: each compared with what
        # the result claimed (``expected``) and what GitHub said (``actual``).
        "facts": {
            "type": "array",
            "items": _object(
                {
                    "name": {"enum": CHECK_FACTS},
                    "status": {"enum": ["verified", "mismatch", "not_checked"]},
                    "expected": _NULLABLE_STR,
                    "actual": _NULLABLE_STR,
                }
            ),
        },
        # GitHub's check runs on the PR's head commit.
        "check_runs": {
            "type": "array",
            "items": _object(
                {
                    "name": _STR,
                    "status": _STR,
                    "conclusion": _NULLABLE_STR,
                    "url": _NULLABLE_STR,
                }
            ),
        },
        "checked_at": _NULLABLE_STR,
    },
    ["state", "summary", "facts", "check_runs", "checked_at"],
)

TIMELINE = _block(
    "timeline",
    {
        "steps": {
            "type": "array",
            "items": _object(
                {
                    "seq": {"type": "integer", "minimum": 1},
                    "ts": _STR,
                    "phase": _STR,
                    "user_message": _STR,
                    # How many identical consecutive steps this entry stands for.
                    "repeat": {"type": "integer", "minimum": 1},
                }
            ),
        },
        "total": _INT,
        "shown": _INT,
        "omitted": _INT,
    },
    ["steps", "total", "shown", "omitted"],
)

_ACTION_BASE = {
    "kind": {"enum": ["open_pr", "reopen", "answer", "feedback"]},
    "label": _STR,
    "url": _STR,
}
ACTIONS = _block(
    "actions",
    {
        "actions": {
            "type": "array",
            "items": {
                "oneOf": [
                    # A link: open it.
                    _object({**_ACTION_BASE, "kind": {"const": "open_pr"}}),
                    # A bodiless POST.
                    _object(
                        {**_ACTION_BASE, "kind": {"const": "reopen"}, "method": {"const": "POST"}}
                    ),
                    # A POST with a JSON body of ``fields``; ``choices`` lists allowed values.
                    _object(
                        {
                            **_ACTION_BASE,
                            "kind": {"enum": ["answer", "feedback"]},
                            "method": {"const": "POST"},
                            "fields": {"type": "array", "items": _STR},
                            "choices": {
                                "type": "object",
                                "additionalProperties": {"type": "array", "items": _STR},
                            },
                        }
                    ),
                ]
            },
        }
    },
    ["actions"],
)

SCHEMAS: dict[str, dict[str, Any]] = {
    "outcome": OUTCOME,
    "hero": HERO,
    "checks": CHECKS,
    "summary": SUMMARY,
    "checklist": CHECKLIST,
    "timeline": TIMELINE,
    "actions": ACTIONS,
}
