"""The task document's two parts: the derived part, and the user's ``## Notes``.

``task/{task_id}.md`` is written by the server from the task (title, prompt, definition
of done, scope, questions and answers) every time its story changes. Everything from the
first line that reads exactly ``## Notes`` to the end is the user's: the server carries
it over unchanged into every regeneration, and a person's edit may change only that
(CONTRACT.md §7). The derived part escapes any ``## Notes`` line of the text it quotes
(``escape_notes_heading``), so the first such line is always the server's.
"""

from __future__ import annotations

import re

from corpus.errors import DerivedDocument

NOTES_HEADING = "## Notes"
NOTES_HINT = (
    "_Your notes. The server rewrites everything above this heading from the task and "
    "never touches this section._"
)
_NOTES_LINE = re.compile(r"^ {0,3}##[ \t]+notes[ \t#]*$", re.IGNORECASE | re.MULTILINE)


def escape_notes_heading(text: str) -> str:
    """Quoted text with its ``## Notes`` lines escaped (``\\## Notes`` reads the same)."""
    return _NOTES_LINE.sub(lambda m: "\\" + m.group(0).lstrip(), text)


def split_notes(body: str) -> tuple[str, str | None]:
    """(derived part, notes) of a task document; notes is None without the heading."""
    body = body.replace("\r\n", "\n")
    for match in re.finditer(r"^## Notes[ \t]*$", body, re.MULTILINE):
        return body[: match.start()], body[match.end() :].lstrip("\n")
    return body, None


def with_notes(derived: str, notes: str | None) -> str:
    """The document: the derived part, then the notes section (a hint when it is new)."""
    kept = notes if notes is not None and notes.strip() else NOTES_HINT + "\n"
    return derived.rstrip("\n") + f"\n\n{NOTES_HEADING}\n\n" + kept


def derived_check(*, task_ref: str, path: str, current: str, new: str, title_changed: bool) -> None:
    """Refuses a person's edit that touches the derived part (409 ``derived_document``)."""
    derived, _ = split_notes(current)
    new_derived, notes = split_notes(new)
    if notes is not None and new_derived.rstrip() == derived.rstrip() and not title_changed:
        return
    raise DerivedDocument(
        f"{path} is derived from task {task_ref}: only its {NOTES_HEADING!r} section can be "
        f"edited here, and it must keep the {NOTES_HEADING!r} heading. Edit the task itself "
        f"with PATCH /api/tasks/{task_ref} or in the admin's task form; the document is "
        "regenerated from it.",
        extra={
            "task_id": task_ref,
            "edit_task": {"method": "PATCH", "url": f"/api/tasks/{task_ref}"},
            "notes_heading": NOTES_HEADING,
        },
    )
