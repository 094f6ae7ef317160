"""Metrics recorded in process (the default registry, as in a single process): counts
follow commits, and compaction reports what it adds to a result."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from corpus.models import Compaction
from tests.corpus.test_compaction import BUDGET, note, run_once

# Counts are taken on commit: real transactions.
pytestmark = pytest.mark.django_db(transaction=True)


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_a_compaction_is_counted_with_its_duration(world, settings):
    settings.ETHER_WORKING_BUDGET_BYTES = BUDGET
    task = world.task()
    compactions = sample("ether_compactions_total")
    timed = sample("ether_compaction_duration_seconds_count")
    for n in range(6):
        run_once(world, task, note(n))
    stored = Compaction.objects.count()
    assert stored >= 1
    assert sample("ether_compactions_total") - compactions == stored
    assert sample("ether_compaction_duration_seconds_count") - timed == stored


def test_a_refused_step_counts_nothing(world):
    """A step refused by its lease (rolled back) is no step."""
    task = world.task()
    harness = world.harness()
    run_id = harness.claim(task.public_id).json()["run_id"]
    steps = sample("ether_steps_total")
    assert harness.step(task.public_id, run_id).status_code == 201
    assert harness.step(task.public_id, "run_" + "0" * 32).status_code == 409
    assert sample("ether_steps_total") - steps == 1
