"""Reads of harness definitions: lookup by id or name, lists, chains, the resolved view
and the wrapped representation of the reference (``self_url``, counts, …)."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, F, IntegerField, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.urls import reverse

from accounts.models import Org
from api.errors import NotFound
from api.ids import is_public_id
from api.rfc3339 import iso
from tasks.harnesses.definitions import (
    MAX_DEPTH,
    Layer,
    Resolved,
    name_error,
    network_out,
    resolve,
)
from tasks.models import Harness, HarnessApp, HarnessStatus, Run

BUILT_IN_DEFAULT = "generic"


def visible(org: Org) -> QuerySet[Harness]:
    """The org's own definitions and the built-in ones, deleted ones left out."""
    return Harness.objects.filter(Q(org=org) | Q(org__isnull=True)).exclude(
        status=HarnessStatus.DELETED
    )


def harness_default(org: Org) -> Harness:
    """The org's default definition, else the built-in ``generic``."""
    chosen = visible(org).filter(org=org, is_default=True).first()
    chosen = chosen or visible(org).filter(org__isnull=True, name=BUILT_IN_DEFAULT).first()
    if chosen is None:
        raise NotFound("This org has no default harness.")
    return chosen


def harness_get(*, org: Org, ref: str) -> Harness:
    """By public id or addressable name within the org; ``default`` is the org default.
    An org's own name wins over a built-in one (they cannot collide: names are checked)."""
    if ref == "default":
        return harness_default(org)
    rows = visible(org)
    if is_public_id(ref, "harness"):
        found = rows.filter(public_id=ref).first()
    else:
        # The org's own first; built-ins (no org) after, on every database's NULL order.
        found = rows.filter(name=ref).order_by(F("org_id").asc(nulls_last=True)).first()
    if found is None:
        raise NotFound(f"No harness {ref!r} in this org.")
    return found


def harness_list(*, org: Org, search: str = "", include_archived: bool = False) -> QuerySet:
    rows = visible(org)
    if not include_archived:
        rows = rows.filter(status=HarnessStatus.ACTIVE)
    if search:
        rows = rows.filter(
            Q(name__icontains=search)
            | Q(display_name__icontains=search)
            | Q(description__icontains=search)
            | Q(tags__icontains=search)
        )
    return with_counts(rows, org)


def with_counts(rows: QuerySet, org: Org) -> QuerySet:
    """``app_count`` and ``session_count`` of the org, one query for the whole page
    (subqueries, so a long run history does not multiply rows)."""
    apps = (
        HarnessApp.objects.filter(harness=OuterRef("pk"), org=org, revoked_at__isnull=True)
        .values("harness")
        .annotate(n=Count("pk"))
        .values("n")
    )
    runs = (
        Run.objects.filter(harness=OuterRef("pk"), task__org=org)
        .values("harness")
        .annotate(n=Count("pk"))
        .values("n")
    )
    zero = Value(0, output_field=IntegerField())
    return rows.annotate(
        app_count=Coalesce(Subquery(apps, output_field=IntegerField()), zero),
        session_count=Coalesce(Subquery(runs, output_field=IntegerField()), zero),
    )


def counted(harness: Harness, org: Org) -> Harness:
    return with_counts(Harness.objects.filter(pk=harness.pk), org).get()


def chain_of(harness: Harness) -> list[Harness]:
    """The definition and its ancestors, root first. Writes keep chains acyclic and
    within ``MAX_DEPTH``; the bound here only keeps a corrupt row from looping."""
    chain = [harness]
    current = harness
    while current.parent_id is not None and len(chain) <= MAX_DEPTH:
        current = Harness.objects.get(pk=current.parent_id)
        chain.append(current)
    return list(reversed(chain))


def layer(harness: Harness) -> Layer:
    return Layer(
        id=harness.public_id,
        name=harness.name,
        system_prompt=harness.system_prompt,
        capabilities=harness.capabilities,
        mcp_servers=harness.mcp_servers,
        network_access=harness.network_access,
        initial_files=harness.initial_files,
        default_model_id=harness.default_model_id,
    )


def harness_resolved(harness: Harness) -> tuple[list[Harness], Resolved]:
    chain = chain_of(harness)
    return chain, resolve([layer(h) for h in chain])


def _files_out(files: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "path": f["path"],
            "content": f["content"],
            "encoding": f.get("encoding", "text"),
            "is_readonly": f.get("is_readonly", False),
        }
        for f in files
    ]


def harness_body(harness: Harness, *, base_url: str, resolved: bool = False) -> dict[str, Any]:
    """The reference's resource in its links wrapper. ``resolved`` replaces the merged
    fields with their effective values and adds ``layers`` (root first) and ``origins``
    (which layer each value came from)."""
    body: dict[str, Any] = {
        "id": harness.public_id,
        "name": harness.name,
        "display_name": harness.display_name,
        "description": harness.description,
        "system_prompt": harness.system_prompt,
        "capabilities": harness.capabilities,
        "mcpServers": harness.mcp_servers,
        "network_access": network_out(harness.network_access),
        "parent_harness_id": harness.parent.public_id if harness.parent_id else None,
        "initial_files": _files_out(harness.initial_files),
        "default_model_id": harness.default_model_id,
        "status": harness.status,
        "is_built_in": harness.is_built_in,
        "is_default": harness.is_default,
        "tags": harness.tags,
        "embedder_metadata": harness.embedder_metadata,
        "parallel_tool_calls": harness.parallel_tool_calls,
        "created_at": iso(harness.created_at),
        "updated_at": iso(harness.updated_at),
        "archived_at": iso(harness.archived_at) if harness.archived_at else None,
        "deleted_at": iso(harness.deleted_at) if harness.deleted_at else None,
    }
    if resolved:
        chain, effective = harness_resolved(harness)
        body.update(
            system_prompt=effective.system_prompt,
            capabilities=effective.capabilities,
            mcpServers=effective.mcp_servers,
            network_access=effective.network_access,
            initial_files=_files_out(effective.initial_files),
            default_model_id=effective.default_model_id,
            resolved=True,
            layers=[h.public_id for h in chain],
            origins=effective.origins,
        )
    view = reverse("admin:tasks_harness_change", args=[harness.public_id])
    body.update(
        self_url=f"{base_url}/v1/harnesses/{harness.public_id}",
        view_url=base_url + view,
        ui_link=base_url + view,
        app_count=getattr(harness, "app_count", 0),
        session_count=getattr(harness, "session_count", 0),
    )
    return body


def bundle_harness(app: HarnessApp) -> Harness | None:
    """The claim bundle's ``harness``: the app's definition (with its counts), or None.
    ``BundleOut`` renders it resolved."""
    if app.harness_id is None:
        return None
    return counted(app.harness, app.org)


def name_available(*, org: Org, name: str, exclude_id: str | None = None) -> tuple[bool, str]:
    """Whether ``name`` could name a new (or, with ``exclude_id``, that) definition of the
    org, and why not: malformed, reserved, or taken by the org or a built-in."""
    error = name_error(name)
    if error:
        return False, error
    taken = visible(org).filter(name=name)
    if exclude_id:
        taken = taken.exclude(public_id=exclude_id)
    if taken.exists():
        return False, f"The name {name!r} is taken in this org (or by a built-in)."
    return True, ""
