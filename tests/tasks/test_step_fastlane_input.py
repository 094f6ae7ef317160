"""The step fast lane's input check: it takes only bodies StepIn takes unchanged
(tasks/services/steps_direct.py ``plain_step``; the lane itself in test_step_fastlane.py)."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tasks.serializers.inputs import StepIn
from tasks.services.steps_direct import plain_step


def plain(run_id: str, **more: Any) -> dict[str, Any]:
    return {"run_id": run_id, "phase": "coding_agent", "user_message": "Ran the tests", **more}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 2**33) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=4,
)
edgy_text = st.sampled_from(["", " ", "ok", " ok", "ok\n", "a\x00b", "\ud800", "é", "x" * 65])
step_bodies = st.fixed_dictionaries(
    {},
    optional={
        "run_id": st.sampled_from(["run_" + "a" * 32, "run_" + "A" * 32, "run_x", 5]),
        "lease_epoch": st.sampled_from([None, 0, 1, 3, True, 2**40, "1", 1.0]),
        "phase": edgy_text | json_values,
        "user_message": edgy_text | json_values,
        "internal_label": edgy_text | json_values,
        "client_step_id": edgy_text | json_values,
        "extra": json_values,
    },
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(step_bodies)
def test_the_lane_takes_only_bodies_step_in_takes_unchanged(data):
    """Whatever the body, the lane's own check never says yes where StepIn says no or
    would store something else: it may only decline more."""
    write = plain_step("task_x", data)
    serializer = StepIn(data=data)
    valid = serializer.is_valid()
    if write is None:
        return
    assert valid, serializer.errors
    clean = serializer.validated_data
    assert (write.run_id, write.phase, write.user_message) == (
        clean["run_id"],
        clean["phase"],
        clean["user_message"],
    )
    assert write.lease_epoch == clean.get("lease_epoch")
    assert write.internal_label == clean.get("internal_label", "")
    assert write.client_step_id == clean.get("client_step_id")


def test_the_lane_takes_an_ordinary_step():
    body = plain("run_" + "a" * 32, lease_epoch=2, internal_label="", client_step_id="c")
    assert plain_step("task_x", body) is not None
