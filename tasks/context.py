"""A task's place in the context corpus: its scope, its task document, its working notes.

The task document is regenerated from the task's state whenever its story changes
(created, a question asked, answered or withdrawn), each time as a new version, so a
later claim reads the whole story and the history shows how it grew.
"""

from __future__ import annotations

from typing import Any

from api.rfc3339 import iso
from corpus.derived import escape_notes_heading, split_notes, with_notes
from corpus.models import Document, DocumentKind
from corpus.selectors import TaskScope
from corpus.services import document_put, memory_compact
from tasks.models import Interrupt, MessageKind, Run, Task, TaskMessage


def task_scope(task: Task) -> TaskScope:
    return TaskScope(
        org=task.org,
        task_ref=task.public_id,
        owner_id=task.owner_id,
        project_id=task.project_id,
        repo_id=task.repo_id,
    )


def _question_lines(interrupt: Interrupt) -> list[str]:
    lines = [f"### {interrupt.question}", ""]
    asked = f"Asked {iso(interrupt.created_at)} by run `{interrupt.run.public_id}`"
    if interrupt.choices:
        asked += " — choices: " + ", ".join(f"`{c}`" for c in interrupt.choices)
    lines.append(asked + ".")
    if interrupt.answered_at is not None:
        who = interrupt.answered_by.get_username() if interrupt.answered_by else "someone"
        lines += ["", f"**Answer** ({who}, {iso(interrupt.answered_at)}): {interrupt.answer}"]
    elif interrupt.withdrawn_at is not None:
        lines += ["", f"_Withdrawn unanswered {iso(interrupt.withdrawn_at)}._"]
    else:
        lines += ["", "_Waiting for an answer._"]
    return [*lines, ""]


def task_document_body(task: Task) -> str:
    """The derived part of ``task/{task_id}.md`` (``corpus.derived``): what the server
    writes from the task. Quoted text has its ``## Notes`` lines escaped, so the notes
    heading the server adds below is always the first."""
    lines = [
        f"# {task.title}",
        "",
        escape_notes_heading(task.prompt.strip()),
        "",
        "## Definition of done",
        "",
    ]
    lines += [f"- [ ] {item}" for item in task.definition_of_done] or ["- (none given)"]
    lines += [
        "",
        "## Scope",
        "",
        f"- Repository: `{task.repo.full_name}` ({task.repo.url}), "
        f"default branch `{task.repo.default_branch}`",
        f"- Branches the harness may push: `{task.branch_scope}`",
    ]
    if task.assigned_app_id is not None:
        lines.append(f"- Assigned to harness app `{task.assigned_app.app_id}`")
    lines.append("")
    questions = list(
        Interrupt.objects.select_related("run", "answered_by").filter(task=task).order_by("pk")
    )
    if questions:
        lines += ["## Questions and answers", ""]
        for interrupt in questions:
            lines += _question_lines(interrupt)
    said = list(TaskMessage.objects.select_related("author").filter(task=task).order_by("pk"))
    if said:
        lines += ["## Feedback and messages", ""]
        for message in said:
            who = message.author.get_username() if message.author else "someone"
            what = "Feedback on reopen" if message.kind == MessageKind.FEEDBACK else "Message"
            text = message.text.strip().replace("\n", "\n  ")  # stays inside its list item
            lines += [f"- **{what}** ({who}, {iso(message.created_at)}): {text}"]
        lines.append("")
    return escape_notes_heading("\n".join(lines).rstrip() + "\n")


def task_document_sync(task: Task, *, user: Any = None) -> None:
    """Writes ``task/{task_id}.md`` from the task's current story (a new version if
    changed), carrying its ``## Notes`` section over as the user left it: the server
    never rewrites what a person wrote there (CONTRACT.md §7)."""
    current = (
        Document.objects.filter(org=task.org, kind=DocumentKind.TASK, scope_key=task.public_id)
        .values_list("body", flat=True)
        .first()
    )
    notes = split_notes(current)[1] if current is not None else None
    document_put(
        org=task.org,
        kind=DocumentKind.TASK,
        task_ref=task.public_id,
        title=task.title,
        body=with_notes(task_document_body(task), notes),
        user=user,
    )


def working_document_write(*, task: Task, run: Run, summary: str) -> None:
    """A result's ``working_summary`` becomes ``working/{run_id}.md``; if the task's notes
    now pass the budget, the older ones are folded into ``memory/{task_id}.md``."""
    document_put(
        org=task.org,
        kind=DocumentKind.WORKING,
        task_ref=task.public_id,
        run_ref=run.public_id,
        title=f"Working notes of {run.app.app_id}, {iso(run.started_at)}",
        body=summary,
    )
    # Compacting here, inside the result's transaction, means the next claim's context
    # is already within budget, and a result that rolls back leaves no memory behind.
    memory_compact(org=task.org, task_ref=task.public_id)
