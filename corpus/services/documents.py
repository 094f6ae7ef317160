"""Writes of the context corpus. Every change of a body is a new, kept version."""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from django.db import DatabaseError, IntegrityError, transaction
from django.utils import timezone

from accounts.models import Org, Project, Repository
from api.errors import NotFound, PreconditionFailed
from corpus.derived import derived_check
from corpus.errors import DocumentExists
from corpus.models import Document, DocumentKind, DocumentVersion
from corpus.rendering import RENDERER, Renders

TITLE_MAX = 200

log = logging.getLogger(__name__)


def sha256_hex(body: str) -> str:
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def scope_of(
    *,
    kind: str,
    owner: Any = None,
    project: Project | None = None,
    repo: Repository | None = None,
    task_ref: str = "",
    run_ref: str = "",
) -> tuple[str, str]:
    """The (scope_key, path) of a document of ``kind`` for that scope."""
    if kind == DocumentKind.PROFILE:
        return f"user:{owner.pk}", "profile.md"
    if kind == DocumentKind.PROJECT:
        return f"project:{project.pk}", "project.md"
    if kind == DocumentKind.REPO:
        return f"repo:{repo.pk}", "repo.md"
    if kind == DocumentKind.TASK:
        return task_ref, f"task/{task_ref}.md"
    if kind == DocumentKind.WORKING:
        return run_ref, f"working/{run_ref}.md"
    if kind == DocumentKind.MEMORY:
        return task_ref, f"memory/{task_ref}.md"
    raise ValueError(f"unknown document kind {kind!r}")


def _new_version(
    document: Document, user: Any, note: str = "", renders: Renders | None = None
) -> None:
    # Only a lookup: this runs inside the write's transaction, where nothing is rendered.
    html = renders.get(document.body) if renders is not None else None
    DocumentVersion.objects.create(
        document=document,
        version=document.version,
        title=document.title,
        body=document.body,
        sha256=document.sha256,
        note=note,
        created_at=document.updated_at,
        created_by=user,
        html=html or "",
        html_renderer=RENDERER if html is not None else "",
    )


def document_create(
    *,
    org: Org,
    kind: str,
    body: str,
    title: str = "",
    user: Any = None,
    owner: Any = None,
    project: Project | None = None,
    repo: Repository | None = None,
    task_ref: str = "",
    run_ref: str = "",
    renders: Renders | None = None,
) -> Document:
    """A new document, version 1. A scope that has one already is ``document_exists``.

    ``renders``: the body rendered by the caller before this transaction, stored with the
    version (without it the version is rendered on its first read)."""
    scope_key, path = scope_of(
        kind=kind, owner=owner, project=project, repo=repo, task_ref=task_ref, run_ref=run_ref
    )
    now = timezone.now()
    try:
        with transaction.atomic():
            document = Document.objects.create(
                org=org,
                kind=kind,
                path=path,
                scope_key=scope_key,
                owner=owner,
                project=project,
                repo=repo,
                task_ref=task_ref,
                run_ref=run_ref,
                title=(title or path)[:TITLE_MAX],
                body=body,
                sha256=sha256_hex(body),
                created_at=now,
                updated_at=now,
                updated_by=user,
            )
            _new_version(document, user, note="created", renders=renders)
    except IntegrityError:
        raise DocumentExists(f"This scope already has a {path}; update it instead.")
    return document


def document_save(
    *,
    document: Document,
    body: str,
    title: str | None = None,
    user: Any = None,
    if_match: str | None = None,
    note: str = "",
    renders: Renders | None = None,
    regenerate: bool = False,
) -> Document:
    """Stores a new version when the body or title changed.

    ``if_match`` is the ETag the editor started from: if someone saved since, the save is
    refused (412) and nothing is lost; the editor reloads and merges. ``renders`` as for
    ``document_create``. A person's save of a task document may change only its ``##
    Notes`` section (409 ``derived_document`` otherwise, ``corpus.derived``); the
    server's own regeneration passes ``regenerate``.
    """
    with transaction.atomic():
        current = Document.objects.select_for_update().get(pk=document.pk)
        if if_match is not None and if_match.strip() not in {current.etag, "*"}:
            raise PreconditionFailed(
                f"{current.path} changed since you loaded it (now version {current.version}, "
                f"ETag {current.etag}); reload and apply your edit again.",
                extra={"current_version": current.version, "etag": current.etag},
            )
        new_title = current.title if title is None else (title or current.path)[:TITLE_MAX]
        if body == current.body and new_title == current.title:
            return current
        if current.kind == DocumentKind.TASK and not regenerate:
            derived_check(
                task_ref=current.task_ref,
                path=current.path,
                current=current.body,
                new=body,
                title_changed=new_title != current.title,
            )
        current.body = body
        current.title = new_title
        current.sha256 = sha256_hex(body)
        current.version += 1
        current.updated_at = timezone.now()
        current.updated_by = user
        current.save()
        _new_version(current, user, note=note, renders=renders)
        return current


def document_put(*, org: Org, kind: str, body: str, title: str = "", **scope: Any) -> Document:
    """Creates the scope's document or stores a new version of it (system writes)."""
    scope_key, _ = scope_of(kind=kind, **{k: v for k, v in scope.items() if k != "user"})
    existing = Document.objects.filter(org=org, kind=kind, scope_key=scope_key).first()
    if existing is None:
        try:
            return document_create(org=org, kind=kind, body=body, title=title, **scope)
        except DocumentExists:
            existing = Document.objects.get(org=org, kind=kind, scope_key=scope_key)
    return document_save(
        document=existing, body=body, title=title or None, user=scope.get("user"), regenerate=True
    )


def document_restore(
    *, document: Document, version: int, user: Any, if_match: str | None = None
) -> Document:
    """Makes an old version current again, as a new version: history is never rewritten."""
    old = DocumentVersion.objects.filter(document=document, version=version).first()
    if old is None:
        raise NotFound(f"{document.path} has no version {version}.")
    renders = Renders()
    if old.html_renderer == RENDERER:
        renders.put(old.body, old.html)  # the same body: its HTML is already rendered
    return document_save(
        document=document,
        body=old.body,
        title=old.title,
        user=user,
        if_match=if_match,
        note=f"restored from v{version}",
        renders=renders,
    )


def version_html_keep(*, version_pk: int, seen_renderer: str, html: str) -> None:
    """Keeps HTML rendered on a read for the version's next reads.

    Conditional on the renderer the reader saw, so two readers filling the same row at
    once both write the same thing and a newer renderer's HTML is never overwritten. A
    failure only costs a render on the next read: it is logged, never raised into a read.
    """
    try:
        # A savepoint when a caller's transaction is open, so a failure cannot break it.
        with transaction.atomic():
            DocumentVersion.objects.filter(pk=version_pk, html_renderer=seen_renderer).update(
                html=html, html_renderer=RENDERER
            )
    except DatabaseError as exc:
        log.warning("could not keep the rendered HTML of version %s: %s", version_pk, exc)
