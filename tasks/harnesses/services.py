"""Writes of harness definitions (docs/contract.md §4): create, update, archive, delete, copy,
the org default, and attaching a definition to a harness app.

Rules on write: a parent is an active definition the org can see (its own, or a
built-in); no cycles; at most ``MAX_DEPTH`` layers in any chain, the descendants of
the definition included; a definition with active children cannot be archived, nor one
with children or apps be deleted; built-in definitions are read-only (copy them).
"""

from __future__ import annotations

import secrets
import string
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Org
from api.errors import Forbidden, NotFound, ValidationFailed
from tasks.errors import HarnessInUse, HarnessNameTaken
from tasks.harnesses import selectors as hs
from tasks.harnesses.definitions import MAX_DEPTH, NAME_MAX
from tasks.harnesses.gallery import Example
from tasks.harnesses.serializers import HarnessIn
from tasks.models import Harness, HarnessApp, HarnessStatus

# Input names of the reference -> model fields; the rest are the same.
FIELD_NAMES = {"mcpServers": "mcp_servers"}
LOCAL_FIELDS = (
    "display_name",
    "description",
    "system_prompt",
    "capabilities",
    "mcpServers",
    "network_access",
    "initial_files",
    "default_model_id",
    "tags",
    "embedder_metadata",
    "parallel_tool_calls",
)
# What null (in a PATCH, or a create) stores for a field that cannot be null; the
# nullable ones (description, network_access, default_model_id, parallel_tool_calls)
# store null. A null display name falls back to the name.
CLEARED: dict[str, Any] = {
    "system_prompt": "",
    "capabilities": [],
    "mcpServers": {},
    "initial_files": [],
    "tags": [],
    "embedder_metadata": {},
}


def _local(key: str, value: Any) -> Any:
    if value is None and key in CLEARED:
        return type(CLEARED[key])(CLEARED[key])
    return value


def parent_check(org: Org, ref: str | None, child: Harness | None) -> Harness | None:
    if ref is None or ref == "":
        return None
    try:
        # Only the org's own definitions and built-ins are visible: another org's id is
        # not found, exactly like an id that does not exist.
        parent = hs.harness_get(org=org, ref=ref)
    except NotFound:
        raise ValidationFailed(
            {"parent_harness_id": [f"No harness {ref!r} in this org: a parent must be one."]}
        ) from None
    if parent.status != HarnessStatus.ACTIVE:
        raise ValidationFailed({"parent_harness_id": ["The parent must be active."]})
    if child is not None:
        # Walking up from the parent must not meet the child.
        ancestors = hs.chain_of(parent)
        if any(a.pk == child.pk for a in ancestors):
            raise ValidationFailed(
                {"parent_harness_id": ["That parent descends from this harness: a cycle."]}
            )
    return parent


def _height(harness: Harness) -> int:
    """Layers below ``harness`` in its deepest line of descendants, itself included."""
    level = [harness.pk]
    height = 0
    seen: set[int] = set()
    while level and height <= MAX_DEPTH:
        height += 1
        seen.update(level)
        level = [
            pk
            for pk in Harness.objects.filter(parent_id__in=level)
            .exclude(status=HarnessStatus.DELETED)
            .values_list("pk", flat=True)
            if pk not in seen
        ]
    return height


def depth_check(parent: Harness | None, harness: Harness | None) -> None:
    above = len(hs.chain_of(parent)) if parent is not None else 0
    below = _height(harness) if harness is not None and harness.pk else 1
    if above + below > MAX_DEPTH:
        raise ValidationFailed(
            {
                "parent_harness_id": [
                    f"Chains are at most {MAX_DEPTH} layers deep; this one would be "
                    f"{above + below}."
                ]
            }
        )


def _save(harness: Harness) -> Harness:
    try:
        with transaction.atomic():
            harness.save()
    except IntegrityError:
        if (
            Harness.objects.filter(org=harness.org, name=harness.name)
            .exclude(pk=harness.pk)
            .exclude(status=HarnessStatus.DELETED)
            .exists()
        ):
            raise HarnessNameTaken(f"This org already has a harness named {harness.name!r}.")
        raise
    return harness


def name_check(org: Org, name: str, harness: Harness | None) -> None:
    taken = hs.visible(org).filter(name=name)
    if harness is not None:
        taken = taken.exclude(pk=harness.pk)
    if taken.exists():
        raise HarnessNameTaken(f"The name {name!r} is taken in this org (or by a built-in).")


def default_check(harness: Harness, value: bool) -> None:
    if value and harness.status != HarnessStatus.ACTIVE:
        raise ValidationFailed({"is_default": ["Only an active harness can be the default."]})


def _set_default(org: Org, harness: Harness, value: bool) -> None:
    """At most one default per org: making one the default unsets the previous one."""
    default_check(harness, value)
    if value:
        Harness.objects.filter(org=org, is_default=True).exclude(pk=harness.pk).update(
            is_default=False
        )
    harness.is_default = value


def harness_create(*, org: Org, data: dict[str, Any]) -> Harness:
    if data.get("status") not in (None, HarnessStatus.ACTIVE):
        raise ValidationFailed({"status": ["A new harness is active."]})
    with transaction.atomic():
        name_check(org, data["name"], None)
        parent = parent_check(org, data.get("parent_harness_id"), None)
        depth_check(parent, None)
        harness = Harness(org=org, name=data["name"], parent=parent)
        harness.display_name = data.get("display_name") or data["name"]
        for key in LOCAL_FIELDS[1:]:
            if key in data:
                setattr(harness, FIELD_NAMES.get(key, key), _local(key, data[key]))
        if data.get("is_default"):
            _set_default(org, harness, True)
        return _save(harness)


def _writable(harness: Harness) -> None:
    if harness.is_built_in:
        raise Forbidden(
            f"{harness.name!r} is built in and read-only; copy it "
            f"(POST /v1/harnesses/{harness.public_id}/copy) to change it."
        )


def harness_update(*, org: Org, harness: Harness, data: dict[str, Any]) -> Harness:
    _writable(harness)
    with transaction.atomic():
        harness = Harness.objects.select_for_update().get(pk=harness.pk)
        if "name" in data and data["name"] != harness.name:
            name_check(org, data["name"], harness)
            harness.name = data["name"]
        if "parent_harness_id" in data:
            parent = parent_check(org, data["parent_harness_id"], harness)
            depth_check(parent, harness)
            harness.parent = parent
        for key in LOCAL_FIELDS:
            if key in data:
                value = _local(key, data[key])
                if key == "display_name" and not value:
                    value = harness.name
                setattr(harness, FIELD_NAMES.get(key, key), value)
        if "status" in data and data["status"] != harness.status:
            if data["status"] == HarnessStatus.ARCHIVED:
                _archive(harness)
            elif data["status"] == HarnessStatus.DELETED:
                _delete(harness)
            else:
                harness.status = HarnessStatus.ACTIVE
                harness.archived_at = None
        if "is_default" in data:
            _set_default(org, harness, data["is_default"])
        harness.updated_at = timezone.now()
        return _save(harness)


def _archive(harness: Harness) -> None:
    children = harness.children.filter(status=HarnessStatus.ACTIVE)
    if children.exists():
        names = ", ".join(sorted(children.values_list("name", flat=True)))
        raise HarnessInUse(
            f"{harness.name!r} has active children ({names}): archive or re-parent them first."
        )
    harness.status = HarnessStatus.ARCHIVED
    harness.archived_at = timezone.now()
    harness.is_default = False


def harness_delete(*, org: Org, harness: Harness) -> Harness:
    """The first DELETE archives; a DELETE of an archived definition deletes it (kept as
    a row so runs still name the definition they started under)."""
    _writable(harness)
    with transaction.atomic():
        harness = Harness.objects.select_for_update().get(pk=harness.pk)
        now = timezone.now()
        if harness.status == HarnessStatus.ACTIVE:
            _archive(harness)
        else:
            _delete(harness)
        harness.updated_at = now
        harness.save()
        return harness


def _delete(harness: Harness) -> None:
    """The tombstone: no children and no apps may still use it."""
    if harness.children.exclude(status=HarnessStatus.DELETED).exists():
        raise HarnessInUse(f"{harness.name!r} still has children.")
    apps = HarnessApp.objects.filter(harness=harness, revoked_at__isnull=True)
    if apps.exists():
        names = ", ".join(sorted(apps.values_list("app_id", flat=True)))
        raise HarnessInUse(
            f"Harness apps use {harness.name!r} ({names}): point them elsewhere first."
        )
    harness.status = HarnessStatus.DELETED
    harness.deleted_at = timezone.now()
    harness.is_default = False


def _copy_name(org: Org, base: str) -> str:
    stem = base[:55]
    for n in range(1, 1000):
        candidate = f"{stem}-copy" if n == 1 else f"{stem}-copy-{n}"
        if not hs.visible(org).filter(name=candidate).exists():
            return candidate
    raise HarnessNameTaken(f"No free name for a copy of {base!r}; give one.")


def harness_copy(*, org: Org, source: Harness, data: dict[str, Any]) -> Harness:
    """An editable copy in the org: the local fields and the parent, not the default flag."""
    with transaction.atomic():
        name = data.get("name") or _copy_name(org, source.name)
        name_check(org, name, None)
        copy = Harness(
            org=org,
            name=name,
            display_name=data.get("display_name") or f"{source.display_name} (copy)",
            description=source.description,
            system_prompt=source.system_prompt,
            capabilities=source.capabilities,
            mcp_servers=source.mcp_servers,
            network_access=source.network_access,
            parent=source.parent if source.parent_id else None,
            initial_files=source.initial_files,
            default_model_id=source.default_model_id,
            tags=source.tags,
            embedder_metadata=source.embedder_metadata,
            parallel_tool_calls=source.parallel_tool_calls,
        )
        return _save(copy)


def attachable_check(org: Org, ref: str | None) -> Harness | None:
    """The definition an app of ``org`` may carry: its org's or a built-in, and active."""
    if not ref:
        return None
    harness = hs.harness_get(org=org, ref=ref)
    if harness.status != HarnessStatus.ACTIVE:
        raise ValidationFailed({"harness": [f"{harness.name!r} is not active."]})
    return harness


def harness_app_attach(*, app: HarnessApp, ref: str | None) -> HarnessApp:
    """Points ``app`` at a definition of its org (by id or name), or at none."""
    harness = attachable_check(app.org, ref)
    HarnessApp.objects.filter(pk=app.pk).update(harness=harness)
    app.harness = harness
    return app


def _suffixed(org: Org, base: str) -> str:
    """``base`` if free, else ``base-xxxx`` with a random lowercase suffix (what Everruns'
    import does on a collision)."""
    name = base
    alphabet = string.ascii_lowercase + string.digits
    for _ in range(20):
        if not hs.visible(org).filter(name=name).exists():
            return name
        suffix = "".join(secrets.choice(alphabet) for _ in range(6))
        name = f"{base[: NAME_MAX - 7]}-{suffix}"
    raise HarnessNameTaken(f"No free name for {base!r}.")


def harness_import(*, org: Org, example: Example, parent: Harness | None) -> Harness:
    """A regular definition of ``org`` made from a gallery example, under ``parent`` (the
    example's ``parent_name`` as the org resolves it), validated like a POST."""
    with transaction.atomic():
        data = example.create_body(_suffixed(org, example.name))
        if parent is not None:
            data["parent_harness_id"] = parent.public_id
        serializer = HarnessIn(data=data)
        serializer.is_valid(raise_exception=True)
        return harness_create(org=org, data=dict(serializer.validated_data))
