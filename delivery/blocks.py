"""The delivery block taxonomy as JSON Schemas (draft 2020-12), one per block type.

These dicts are the source of truth that ``docs/delivery.md`` prints and the tests
validate every composed payload against. Blocks are closed (``additionalProperties:
false``) so a key added in ``compose.py`` without a schema change fails the tests instead
of reaching pages undocumented.
"""

from __future__ import annotations

from typing import Any

STATUSES = ["submitted", "blocked", "no_changes"]

# The blocks of each result status, in order; ``hero``, ``summary`` and friends appear
# exactly where listed (docs/delivery.md).
ORDER: dict[str, list[str]] = {
    "submitted": ["outcome", "hero", "summary", "checklist", "timeline", "actions"],
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
        "verdict": _object(
            {
                "in_scope": {"type": "boolean"},
                "summary": _STR,
                "checklist_met": _INT,
                "checklist_total": _INT,
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
            "items": _object(
                {"text": _STR, "mentioned": {"type": "boolean"}, "evidence": _NULLABLE_STR}
            ),
        },
    },
    ["method", "items"],
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
    "summary": SUMMARY,
    "checklist": CHECKLIST,
    "timeline": TIMELINE,
    "actions": ACTIONS,
}
