"""Reads of the context corpus: what a task may see, slice by slice."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from django.conf import settings
from django.db.models import Case, Q, QuerySet, Value, When

from accounts.models import Org
from api.errors import NotFound
from api.ids import is_public_id
from corpus.models import Compaction, Document, DocumentKind, DocumentVersion, Skill, Tool
from corpus.rendering import RENDERER, render_for_display
from corpus.services.documents import version_html_keep

SLICES = ("profile", "project", "repo", "task", "working")


@dataclass(frozen=True)
class TaskScope:
    """Everything a task may read: its owner's profile, its project's and repository's
    documents, its own task document, the working documents of its runs and its
    compacted memory."""

    org: Org
    task_ref: str
    owner_id: int | None
    project_id: int
    repo_id: int


def _slice_filter(scope: TaskScope, name: str) -> Q:
    if name == "profile":
        return (
            Q(kind=DocumentKind.PROFILE, owner_id=scope.owner_id) if scope.owner_id else Q(pk=None)
        )
    if name == "project":
        return Q(kind=DocumentKind.PROJECT, project_id=scope.project_id)
    if name == "repo":
        return Q(kind=DocumentKind.REPO, repo_id=scope.repo_id)
    if name == "task":
        return Q(kind=DocumentKind.TASK, task_ref=scope.task_ref)
    return Q(kind__in=[DocumentKind.WORKING, DocumentKind.MEMORY], task_ref=scope.task_ref)


def scope_queryset(scope: TaskScope) -> QuerySet[Document]:
    where = Q(pk=None)
    for name in SLICES:
        where |= _slice_filter(scope, name)
    return Document.objects.filter(org=scope.org).filter(where)


def working_selection(docs: list[Document], *, folded: Collection[str] = ()) -> list[Document]:
    """The ``working`` slice: the compacted memory, then the newest raw working documents
    it does not already cover (``folded``: doc ids of the latest compaction's inputs) that
    fit in ``ETHER_WORKING_BUDGET_BYTES`` beside it.

    The raw ones are a run of the newest, as ``memory_compact`` keeps them. The newest
    note is always listed whole, even when it passes the budget beside the memory
    (CONTRACT.md §7): what the last run wrote is what the next one needs most.
    """
    memory = [d for d in docs if d.kind == DocumentKind.MEMORY]
    raw = sorted(
        (d for d in docs if d.kind == DocumentKind.WORKING and d.public_id not in folded),
        key=lambda d: (d.created_at, d.pk),
        reverse=True,
    )
    budget = settings.ETHER_WORKING_BUDGET_BYTES - sum(d.size for d in memory)
    chosen: list[Document] = []
    for doc in raw:
        if doc.size > budget and chosen:
            break
        chosen.append(doc)
        budget -= doc.size
    return memory + chosen


def folded_doc_ids(scope: TaskScope) -> set[str]:
    """Ids of the raw notes the task's current memory covers (its latest compaction)."""
    latest = (
        Compaction.objects.filter(org=scope.org, task_ref=scope.task_ref)
        .order_by("-created_at", "-pk")
        .first()
    )
    return {row["doc_id"] for row in latest.inputs} if latest is not None else set()


@dataclass(frozen=True)
class Slice:
    """One slice of a task's scope and its documents (``corpus.serializers.SliceOut``)."""

    name: str
    docs: list[Document]


def scope_slices(scope: TaskScope, names: list[str]) -> list[Slice]:
    """The slices' documents in one query (it was one per slice, issue 18): each row says
    which slices it is in."""
    filters = {name: _slice_filter(scope, name) for name in names}
    where = Q(pk=None)
    for condition in filters.values():
        where |= condition
    flags = {
        f"in_{name}": Case(When(condition, then=Value(True)), default=Value(False))
        for name, condition in filters.items()
    }
    rows = list(
        Document.objects.filter(org=scope.org)
        .filter(where)
        .annotate(**flags)
        .order_by("created_at", "pk")
    )
    out = []
    for name in names:
        docs = [doc for doc in rows if getattr(doc, f"in_{name}")]
        if name == "working":
            docs = working_selection(docs, folded=folded_doc_ids(scope))
        out.append(Slice(name=name, docs=docs))
    return out


def document_in_scope(scope: TaskScope, ref: str) -> Document:
    """A document of the task's scope by id or by path; anything else is 404."""
    queryset = scope_queryset(scope)
    if is_public_id(ref, "doc"):
        document = queryset.filter(public_id=ref).first()
    else:
        document = queryset.filter(path=ref).first()
    if document is None:
        raise NotFound(f"No document {ref!r} in the scope of {scope.task_ref}.")
    return document


def document_get(*, org: Org, doc_id: str) -> Document:
    if not is_public_id(doc_id, "doc"):
        raise NotFound(f"No document {doc_id!r}.")
    document = (
        Document.objects.select_related("updated_by", "project", "repo", "owner")
        .filter(org=org, public_id=doc_id)
        .first()
    )
    if document is None:
        raise NotFound(f"No document {doc_id!r}.")
    return document


def tools_for_org(org: Org) -> QuerySet[Tool]:
    return Tool.objects.filter(org=org).order_by("name")


def skills_for_org(org: Org, domain: str | None) -> QuerySet[Skill]:
    skills = Skill.objects.filter(org=org).order_by("domain", "name")
    if domain:
        skills = skills.filter(domain__iexact=domain)
    return skills


def skill_domains(org: Org) -> list[str]:
    """The domains the org's skills have, each once (as first spelled), sorted."""
    seen: dict[str, str] = {}
    for domain in Skill.objects.filter(org=org).order_by("domain").values_list("domain", flat=True):
        seen.setdefault(domain.casefold(), domain)
    return sorted(seen.values(), key=str.casefold)


def document_html(document: Document) -> str:
    """The sanitized HTML of the document's current version, rendered once per version.

    The version row keeps what was rendered; a version written without it (inside another
    flow's transaction, or before the column existed) or by an older renderer is rendered
    here, outside any write, and kept for the next read.
    """
    row = (
        DocumentVersion.objects.filter(document=document, version=document.version)
        .values("pk", "html", "html_renderer")
        .first()
    )
    if row is not None and row["html_renderer"] == RENDERER:
        return row["html"]
    html = render_for_display(document.body)
    if row is not None:
        version_html_keep(version_pk=row["pk"], seen_renderer=row["html_renderer"], html=html)
    return html


def documents_for_org(
    *, org: Org, kind: str | None, project: str | None, repo: str | None
) -> QuerySet[Document]:
    queryset = Document.objects.select_related("updated_by").filter(org=org)
    if kind:
        queryset = queryset.filter(kind=kind)
    if project:
        queryset = queryset.filter(project__slug=project)
    if repo:
        queryset = queryset.filter(repo__full_name=repo)
    return queryset
