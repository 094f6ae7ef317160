"""Repository-level memory: a person promotes what a task's run learned (a working note,
the compacted memory, or part of either) into the repository's document ``repo.md``,
which every later task on that repository reads in its ``repo`` slice."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

from accounts.models import Org, Repository
from api.errors import PreconditionFailed
from corpus.models import Document, DocumentKind
from corpus.services.documents import document_create, document_save, scope_of


@dataclass(frozen=True)
class Promotion:
    """The repository document before and after (``document`` None: none yet), their
    unified diff, and, once saved, the document as stored."""

    before: str
    after: str
    diff: str
    document: Document | None
    saved: bool


def promoted_body(before: str, *, repo: Repository, text: str, source: str, task_ref: str) -> str:
    section = f"## From {source} ({task_ref})\n\n{text.strip()}\n"
    if not before.strip():
        return f"# {repo.full_name}\n\n{section}"
    return before.rstrip("\n") + "\n\n" + section


def repo_memory_promote(
    *,
    org: Org,
    repo: Repository,
    user: Any,
    text: str,
    source: str,
    task_ref: str,
    if_match: str | None,
    save: bool,
) -> Promotion:
    """Appends ``text`` to the repository's document under a heading naming where it came
    from. Without ``save`` it only says what would change (the diff to show before
    saving). With ``save``, ``if_match`` must be the ETag the diff was made from (``*``
    when there was no document): a save since then is 412 and nothing is lost."""
    scope_key, path = scope_of(kind=DocumentKind.REPO, repo=repo)
    current = Document.objects.filter(org=org, kind=DocumentKind.REPO, scope_key=scope_key).first()
    before = current.body if current is not None else ""
    after = promoted_body(before, repo=repo, text=text, source=source, task_ref=task_ref)
    diff = "\n".join(
        difflib.unified_diff(
            before.splitlines(),
            after.splitlines(),
            fromfile=f"{path} (now)",
            tofile=f"{path} (after)",
            lineterm="",
        )
    )
    if not save:
        return Promotion(before=before, after=after, diff=diff, document=current, saved=False)
    note = f"promoted from {source} of {task_ref}"
    if current is None:
        if (if_match or "").strip() not in {"*", ""}:
            raise PreconditionFailed(
                f"{path} does not exist yet; preview again.", extra={"etag": None}
            )
        document = document_create(
            org=org, kind=DocumentKind.REPO, body=after, title=path, user=user, repo=repo
        )
    else:
        if not if_match:
            raise PreconditionFailed(
                f"Send If-Match with the ETag of {path} the diff was made from "
                f"(now {current.etag}).",
                extra={"current_version": current.version, "etag": current.etag},
            )
        document = document_save(
            document=current, body=after, user=user, if_match=if_match, note=note
        )
    return Promotion(before=before, after=after, diff=diff, document=document, saved=True)
