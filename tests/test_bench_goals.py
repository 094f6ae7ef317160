"""bench/goals.py judges a run's results against issue 18's goals: a number past its bound
is NOT met, one within it is met, a benchmark left out is not run."""

from __future__ import annotations

from typing import Any

from bench import goals


def _summary(p99: float) -> dict[str, float]:
    return {"n": 100, "p50_ms": p99 / 2, "p99_ms": p99}


def _overload(refusal_p99: float, accepted_p99: float, failed: int = 0) -> dict[str, Any]:
    return {
        "offered": 100,
        "ok": 60,
        "statuses": {"201": 60, "503": 40 - failed, "500": failed},
        "retry_after_missing": 0,
        "refused": _summary(refusal_p99),
        "accepted": _summary(accepted_p99),
    }


def _steps(ratio: float, refusal_p99: float, accepted_p99: float) -> dict[str, Any]:
    row = {
        "ratio": ratio,
        "overload_1_5": _overload(100, 100),
        "overload": _overload(refusal_p99, accepted_p99),
        "behind_haproxy": [_overload(100, 100)],
    }
    return {"results": {"sqlite/one task": row, "sqlite/50 tasks": {**row, "ratio": 0.9}}}


def _fan(ether_p99: float, post_p50: float = 3.0, lost: int = 0) -> dict[str, Any]:
    ether = {
        "p50_ms": 10.0,
        "p99_ms": ether_p99,
        "status_503": 0,
        "errors": 0,
        "lost": lost,
        "gaps": 0,
        "refused": 0,
        "post": {"p50_ms": post_p50},
    }
    baseline = {"p50_ms": 5.0, "p99_ms": 10.0}
    return {"rate": 20.0, "memory/1": {"ether": ether, "baseline": baseline}}


def _verdicts(outs: dict[str, Any]) -> dict[str, str]:
    """Verdict by goal: "1." to "6.", and goal 3's two rows as "3 direct" and "3 haproxy"."""
    out = {}
    for line in goals.table(outs).splitlines()[2:]:
        goal, verdict = line.split("|")[1].strip(), line.split("|")[3].strip()
        key = goal[:2]
        if key == "3.":
            key = "3 haproxy" if goal.endswith("through haproxy") else "3 direct"
        out[key] = verdict
    return out


def test_a_run_within_every_bound_meets_the_goals_it_measured():
    verdicts = _verdicts({"steps": _steps(0.5, 400, 450), "fanout": {"results": _fan(19.9)}})
    assert verdicts == {
        "1.": "met",
        "2.": "met",
        "3 direct": "met",
        "3 haproxy": "met",
        "4.": "met",
        "5.": "not run",
        "6.": "by hand",
    }


def test_each_number_past_its_bound_is_not_met():
    assert _verdicts({"steps": _steps(0.49, 100, 100)})["1."] == "NOT met"
    assert _verdicts({"steps": _steps(0.9, 501, 100)})["3 direct"] == "NOT met"
    assert _verdicts({"steps": _steps(0.9, 100, 501)})["3 direct"] == "NOT met"
    assert _verdicts({"steps": _steps(0.9, 100, 501)})["3 haproxy"] == "met"
    assert _verdicts({"fanout": {"results": _fan(20.1)}})["2."] == "NOT met"
    assert _verdicts({"fanout": {"results": _fan(15.0, lost=1)}})["2."] == "NOT met"
    assert _verdicts({"fanout": {"results": _fan(15.0, post_p50=11.0)}})["4."] == "NOT met"


def test_a_failed_request_past_capacity_is_not_met_whatever_the_latencies():
    steps = _steps(0.9, 100, 100)
    steps["results"]["sqlite/one task"]["overload"] = _overload(100, 100, failed=1)
    assert _verdicts({"steps": steps})["3 direct"] == "NOT met"


def test_benchmarks_left_out_are_not_run():
    assert set(_verdicts({}).values()) == {"not run", "by hand"}


def test_goal_3_shows_how_late_the_generator_itself_sent_without_judging_it():
    """The load generator shares the cores with the server: its own lateness is shown
    beside goal 3's numbers (the largest p99 of the rows), and never changes a verdict.
    Runs recorded before it was measured show 0."""
    steps = _steps(0.9, 100, 100)
    steps["results"]["sqlite/one task"]["overload"]["send_lag"] = _summary(321.0)
    rows = [line for line in goals.table({"steps": steps}).splitlines() if "3. past" in line]
    direct = next(row for row in rows if "served directly" in row)
    assert "generator's own lag p99 ≤ 321 ms" in direct
    assert direct.split("|")[3].strip() == "met"
    assert all("lag p99 ≤ 0 ms" in row for row in rows if row is not direct)
