"""Numbers and their output: progress, percentiles, ratios, Markdown tables, JSON files."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.common import OUT


def progress(label: str, done: int, total: int) -> None:
    """A one-line progress bar on stderr (``\\r``), so stdout keeps only the tables."""
    width = 30
    filled = int(width * done / total) if total else width
    end = "\n" if done >= total else ""
    sys.stderr.write(
        f"\r  {label:<42} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}{end}"
    )
    sys.stderr.flush()


def pct(sorted_values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of an already sorted list (``nan`` when empty)."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), round(p / 100 * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


def summary_ms(samples_s: Sequence[float]) -> dict[str, float | int]:
    """p50/p95/p99/max in milliseconds of samples in seconds."""
    values = sorted(samples_s)
    return {
        "n": len(values),
        "p50_ms": round(pct(values, 50) * 1000, 3),
        "p95_ms": round(pct(values, 95) * 1000, 3),
        "p99_ms": round(pct(values, 99) * 1000, 3),
        "max_ms": round((values[-1] if values else float("nan")) * 1000, 3),
    }


def ratio(ours: float, base: float) -> float:
    return round(ours / base, 2) if base else float("nan")


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table: printed as is and pasted into docs/performance.md."""

    def cell(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
        if isinstance(value, int):
            return f"{value:,}"
        return str(value)

    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(out)


def write_json(name: str, data: dict[str, Any]) -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{name}.json"
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
    return path
