"""Reads of harness definitions: lookup by id or name, lists, chains, and the view that
``tasks.harnesses.serializers.HarnessOut`` renders (its own values or the resolved ones,
with its counts)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Count, F, IntegerField, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce

from accounts.models import Org
from api.errors import NotFound
from api.ids import is_public_id
from tasks.harnesses.definitions import (
    MAX_DEPTH,
    Layer,
    Resolved,
    name_error,
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


@dataclass(frozen=True)
class HarnessView:
    """A definition as ``HarnessOut`` serves it: the merged fields (prompt, capabilities,
    MCP servers, network, files, model) from ``values``, here the definition's own."""

    harness: Harness
    values: Layer | Resolved

    # Annotated by ``with_counts``; a definition read without them counts nothing.
    @property
    def app_count(self) -> int:
        return getattr(self.harness, "app_count", 0)

    @property
    def session_count(self) -> int:
        return getattr(self.harness, "session_count", 0)


@dataclass(frozen=True)
class ResolvedHarnessView(HarnessView):
    """Resolved through its parents: ``values`` are the effective ones, and ``layers``
    (root first), ``origins`` (which layer each value came from) and ``resolved`` are
    served too. A plain ``HarnessView`` has none of the three, so ``HarnessOut`` (where
    they are optional) leaves them out."""

    layers: list[str]
    origins: dict[str, Any]
    resolved: bool = True


def harness_view(harness: Harness, *, resolved: bool = False) -> HarnessView:
    if not resolved:
        return HarnessView(harness, layer(harness))
    chain, effective = harness_resolved(harness)
    return ResolvedHarnessView(
        harness, effective, layers=[h.public_id for h in chain], origins=effective.origins
    )


def bundle_harness(app: HarnessApp) -> Harness | None:
    """The claim bundle's ``harness``: the app's definition (with its counts), or None.
    ``BundleOut`` renders it resolved (``HarnessOut``)."""
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
