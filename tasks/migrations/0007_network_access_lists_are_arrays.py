"""``network_access.allowed`` and ``blocked`` are always arrays (docs/contract.md §4,
Everruns compatibility), and an empty ``allowed`` now means "no allow-list from this
layer", as Everruns reads it.

Stored rows are rewritten to keep what they meant:
- ``allowed: null`` (or absent) was "no allow-list": now ``[]``.
- ``allowed: []`` was "allow nothing" (every such row was written through Ether's own API
  or admin: Everruns' clients could not authenticate before this change): now
  ``["allow-nothing.invalid"]``, the allow-list that allows nothing
  (``tasks.harnesses.definitions.ALLOW_NOTHING``).
- ``blocked: null`` (or absent): ``[]``.
The built-in ``generic`` has ``allowed: null``: it becomes ``[]``. A ``network_access``
that is null stays null (no rules at all). Reversing turns ``[]`` back into null and the
allow-nothing list back into ``[]``.
"""

from __future__ import annotations

from typing import Any

from django.db import migrations

ALLOW_NOTHING = "allow-nothing.invalid"  # frozen here: a migration keeps its own constants


def _rewrite(apps: Any, change: Any) -> None:
    Harness = apps.get_model("tasks", "Harness")
    for harness in Harness.objects.exclude(network_access=None).iterator():
        if not isinstance(harness.network_access, dict):
            continue
        updated = change(harness.network_access)
        if updated != harness.network_access:
            Harness.objects.filter(pk=harness.pk).update(network_access=updated)


def forwards(apps: Any, schema_editor: Any) -> None:
    def change(value: dict[str, Any]) -> dict[str, Any]:
        allowed = value.get("allowed")
        if allowed is None:
            allowed = []
        elif allowed == []:
            allowed = [ALLOW_NOTHING]
        return {"allowed": list(allowed), "blocked": list(value.get("blocked") or [])}

    _rewrite(apps, change)


def backwards(apps: Any, schema_editor: Any) -> None:
    def change(value: dict[str, Any]) -> dict[str, Any]:
        allowed = value.get("allowed") or None
        if allowed == [ALLOW_NOTHING]:
            allowed = []
        return {"allowed": allowed, "blocked": list(value.get("blocked") or [])}

    _rewrite(apps, change)


class Migration(migrations.Migration):
    dependencies = [("tasks", "0006_tenancy_in_accounts")]
    operations = [migrations.RunPython(forwards, backwards)]
