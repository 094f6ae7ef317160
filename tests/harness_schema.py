"""Everruns' published OpenAPI (``tests/everruns/everruns-openapi.json``, a copy of
``shared/reference/everruns-openapi.json``, kept as they publish it) as the test of every
``/v1/harness*`` response, and the built-in definitions a transactional test needs back."""

from __future__ import annotations

from django.apps import apps as django_apps


def ensure_built_ins() -> None:
    """A transactional test starts after another one flushed the tables, data migrations'
    rows included: puts the built-in ``generic`` back, as its migration makes it."""
    from importlib import import_module

    from tasks.models import Harness

    if Harness.objects.filter(org__isnull=True, name="generic").exists():
        return
    import_module("tasks.migrations.0004_built_in_generic_harness").create_generic(
        django_apps, None
    )
    # The later migrations' rewrites, on this one row (not idempotent on others).
    Harness.objects.filter(org__isnull=True, name="generic").update(
        network_access={"allowed": [], "blocked": ["169.254.169.254", "metadata.google.internal"]}
    )
