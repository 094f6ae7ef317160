"""Issue 18's goals, judged from one run's results: the table ``python -m bench`` prints
last, so that whether a run meets them is read off the run, not worked out by hand.

Each row is a goal with the numbers it was judged on and ``met``, ``NOT met`` or ``not
run`` (its benchmark was not part of this run). The bounds are the issue's where it
gives one; where it gives words, the bound chosen for them is in ``BOUNDS`` and in
docs/performance.md ("How to run").
"""

from __future__ import annotations

from typing import Any

from bench import report

BOUNDS = {
    # Goal 1: Ether's sustained steps/s over the baseline's, per store and load.
    "steps_ratio": 0.5,
    # Goal 2: fan-out p99 over the baseline's, per layer and subscriber count.
    "fanout_p99_ratio": 2.0,
    # Goal 3, "refused fast (well under a second)": the refusals' p99.
    "refusal_p99_ms": 500.0,
    # Goal 3, "the accepted ones keep their latency": the accepted steps' p99 stays under
    # the bound a rate must keep to count as sustained (bench_steps.P99_LIMIT_MS).
    "accepted_p99_ms": 500.0,
}


def _verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def steps_goal(out: dict[str, Any] | None) -> list[list[str]]:
    """Goal 1 (rates; the query counts are asserted in tests/tasks/test_query_counts.py)
    and goal 3 (past capacity, served directly and through haproxy)."""
    if out is None:
        return [
            ["1. steps/s ≥ 0.5x baseline", "—", "not run"],
            ["3. past capacity", "—", "not run"],
        ]
    results = out["results"]
    ratios = {key: r["ratio"] for key, r in results.items()}
    goal1 = all(r is not None and r >= BOUNDS["steps_ratio"] for r in ratios.values())
    rows = [
        [
            "1. steps/s ≥ 0.5x baseline (one task, 50 tasks)",
            ", ".join(f"{key} {ratio}" for key, ratio in ratios.items()),
            _verdict(goal1),
        ]
    ]
    for how, runs in (
        ("served directly", lambda r: [r["overload_1_5"], r["overload"]]),
        ("through haproxy", lambda r: r["behind_haproxy"]),
    ):
        refusal, accepted, failed, missing, lag = 0.0, 0.0, 0, 0, 0.0
        seen = False
        for r in results.values():
            for run_ in runs(r):
                seen = True
                refusal = max(refusal, _ms(run_["refused"]["p99_ms"]))
                accepted = max(accepted, _ms(run_["accepted"]["p99_ms"]))
                refused = run_["statuses"].get("503", 0) + run_["statuses"].get("429", 0)
                failed += run_["offered"] - run_["ok"] - refused
                missing += run_["retry_after_missing"]
                # Not judged: how late the load generator itself sent (bench_steps).
                lag = max(lag, _ms(run_.get("send_lag", {}).get("p99_ms", 0.0)))
        if not seen:
            rows.append([f"3. past capacity, {how}", "—", "not run"])
            continue
        ok = (
            refusal <= BOUNDS["refusal_p99_ms"]
            and accepted <= BOUNDS["accepted_p99_ms"]
            and failed == 0
            and missing == 0
        )
        rows.append(
            [
                f"3. past capacity (1.5x and 2x), {how}",
                f"refusal p99 ≤ {refusal:,.0f} ms, accepted p99 ≤ {accepted:,.0f} ms, "
                f"{failed} failed, {missing} refusals without Retry-After "
                f"(the generator's own lag p99 ≤ {lag:,.0f} ms)",
                _verdict(ok),
            ]
        )
    return rows


def _ms(value: float) -> float:
    # An empty sample's percentile is nan: no refusal (or nothing accepted) bounds nothing.
    return 0.0 if value != value else value


def fanout_goals(out: dict[str, Any] | None) -> list[list[str]]:
    """Goal 2 (fan-out within 2x, no 503, nothing lost) and goal 4 (the step POST
    returns before the fan-out: its p50 below the frames' p50 at the largest count)."""
    if out is None:
        return [["2. fan-out", "—", "not run"], ["4. step POST before fan-out", "—", "not run"]]
    results = {k: v for k, v in out["results"].items() if "/" in k}
    worst, bad = 0.0, []
    for key, row in results.items():
        e, b = row["ether"], row["baseline"]
        ratio = report.ratio(e["p99_ms"], b["p99_ms"])
        worst = max(worst, ratio)
        if ratio > BOUNDS["fanout_p99_ratio"]:
            bad.append(f"{key} {ratio}")
        if e["status_503"] or e["errors"] or e["lost"] or e["gaps"] or e["refused"]:
            bad.append(f"{key}: {e['errors']} errors, {e['lost']} lost, {e['refused']} refused")
    rows = [
        [
            "2. fan-out p99 ≤ 2x baseline, no 503, nothing lost",
            f"worst p99 ratio {worst}" + (f"; {'; '.join(bad)}" if bad else ""),
            _verdict(not bad),
        ]
    ]
    largest = max(results, key=lambda k: int(k.rsplit("/", 1)[1]), default=None)
    if largest is None:
        rows.append(["4. step POST before fan-out", "—", "not run"])
    else:
        e = results[largest]["ether"]
        rows.append(
            [
                "4. step POST returns before fan-out",
                f"{largest}: POST p50 {e['post']['p50_ms']} ms, frame p50 {e['p50_ms']} ms",
                _verdict(e["post"]["p50_ms"] < e["p50_ms"]),
            ]
        )
    return rows


def workers_goal(out: dict[str, Any] | None) -> list[list[str]]:
    """Goal 5: steps/s and fan-out for 1 and 2 processes behind haproxy, nothing lost."""
    if out is None or not out.get("results"):
        return [["5. 1 and 2 processes behind haproxy", "—", "not run"]]
    results = out["results"]
    counts = sorted({int(k.rsplit("/", 1)[1]) for k in results})
    missing = sum(
        f["missing"] + f["step_errors"] + f["refused_subscribers"]
        for k, r in results.items()
        if k.startswith("ether/")
        for f in r["fanout"].values()
    )
    return [
        [
            "5. 1 and 2 processes behind haproxy",
            f"processes {counts}; {missing} failed steps, missing frames or refused sockets",
            _verdict(counts == [1, 2] and missing == 0),
        ]
    ]


def table(outs: dict[str, dict[str, Any]]) -> str:
    """The goals table for one run's outputs by benchmark name."""
    rows = [
        *steps_goal(outs.get("steps")),
        *fanout_goals(outs.get("fanout")),
        *workers_goal(outs.get("workers")),
        [
            "6. profile before and after",
            "docs/performance.md §8 (pyinstrument, py-spy)",
            "by hand",
        ],
    ]
    rows.sort(key=lambda row: row[0])
    return report.table(["issue 18 goal", "this run", "verdict"], rows)
