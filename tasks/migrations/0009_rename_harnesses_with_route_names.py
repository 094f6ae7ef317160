"""``check-name``, ``config``, ``import``, ``preview``, ``stats`` and ``harness-examples``
are routes now (``/v1/harnesses/config``, …) and reserved names
(``tasks.harnesses.definitions.ROUTE_NAMES``). A definition that already has one of them
could no longer be reached by name: it is renamed ``{name}-harness`` (or
``{name}-harness-2``, … when that is taken in its org). Its id, and so every reference to
it (parents, apps, runs), is unchanged. Deleted definitions keep their names (nobody
addresses them). Not reversed: the old names would shadow the routes again.
"""

from __future__ import annotations

from typing import Any

from django.db import migrations

ROUTE_NAMES = ("check-name", "config", "import", "preview", "stats", "harness-examples")


def rename(apps: Any, schema_editor: Any) -> None:
    Harness = apps.get_model("tasks", "Harness")
    clashing = Harness.objects.filter(name__in=ROUTE_NAMES).exclude(status="deleted")
    for harness in clashing.order_by("pk"):
        # Names are unique per org among non-deleted definitions and never a built-in's.
        taken = set(
            Harness.objects.filter(org_id=harness.org_id)
            .exclude(status="deleted")
            .values_list("name", flat=True)
        ) | set(Harness.objects.filter(org__isnull=True).values_list("name", flat=True))
        candidate, n = f"{harness.name}-harness", 1
        while candidate in taken:
            n += 1
            candidate = f"{harness.name}-harness-{n}"
        Harness.objects.filter(pk=harness.pk).update(name=candidate)


class Migration(migrations.Migration):
    dependencies = [("tasks", "0008_harness_embedder_metadata_and_parallel_tool_calls")]
    operations = [migrations.RunPython(rename, migrations.RunPython.noop)]
