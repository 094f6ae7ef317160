"""Markdown rendering: throughput on ordinary documents and the worst case on a
pathological corpus, for cmark-gfm (what ``corpus.rendering`` uses), markdown-it-py and
(at small sizes, if it is still installed) Python-Markdown, each followed by the same nh3
sanitizer, against two baselines: a copy of the string and nh3 alone on the source.

Issue 12: Python-Markdown took 19 s on ``"[" * 8000`` and held the SQLite write lock
meanwhile. The numbers go to docs/performance.md ("Markdown rendering").

The measuring runs in a child process (``python -m bench.bench_markdown --child``) with
Django's settings loaded, as every other benchmark keeps Django out of its own process.
``ETHER_MAX_RENDER_BYTES`` is raised there to the body limit so the sizes past the
default limit are measured too (in production they are refused before rendering).
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import common as c
from bench import report

BODY_LIMIT = 1024 * 1024
FULL_SIZES = [1024, 8 * 1024, 16 * 1024, 32 * 1024, 64 * 1024, 256 * 1024, BODY_LIMIT]
QUICK_SIZES = [1024, 4 * 1024]
# Python-Markdown is quadratic: past these sizes a single case takes minutes.
SLOW_SIZES = [1024, 2 * 1024, 4 * 1024, 8 * 1024]
# A case that took longer than this at one size is not tried at the next.
GIVE_UP_SECONDS = 5.0


def _repeat(unit: str) -> Callable[[int], str]:
    return lambda size: (unit * (size // len(unit) + 1))[:size]


def _table(size: int) -> str:
    cols = 500
    head = "|" + "a|" * cols + "\n|" + "-|" * cols + "\n"
    row = "|" + "b|" * cols + "\n"
    return (head + row * (size // len(row) + 1))[:size]


def _lists(size: int) -> str:
    """``- - - … x``: one list nested in the next (without the x, a thematic break)."""
    return ("- " * (size // 2))[: size - 1] + "x"


def _refdefs(size: int) -> str:
    """Many reference definitions, then as many references to them."""
    defs, refs, n = [], [], 0
    while sum(map(len, defs)) * 2 < size:
        defs.append(f"[r{n}]: https://example.com/{n} 'T{n}'\n")
        refs.append(f"[x][r{n}] ")
        n += 1
    return ("".join(defs) + "\n" + "".join(refs))[:size]


def _backticks(size: int) -> str:
    """Backtick runs of every length: each opener looks for its matching closer."""
    out, n = [], 1
    while sum(map(len, out)) < size:
        out.append("`" * n + "a")
        n = n % 200 + 1
    return "".join(out)[:size]


PATHOLOGICAL: dict[str, Callable[[int], str]] = {
    "brackets [": _repeat("["),
    "link openers [a](": _repeat("[a]("),
    "images ![": _repeat("!["),
    "emphasis *a**": _repeat("*a**"),
    "underscores _a__": _repeat("_a__"),
    "strikethrough ~a~~": _repeat("~a~~"),
    "blockquotes > > >": _repeat("> "),
    "nested lists - - - x": _lists,
    "backtick runs": _backticks,
    "less-than <": _repeat("<"),
    "comment openers <!--": _repeat("<!--"),
    "raw nested <div>": _repeat("<div>"),
    "raw nested <ul><li>": _repeat("<ul><li>"),
    "entities &#": _repeat("&#"),
    "link reference definitions": _refdefs,
    "table, 500 columns": _table,
    "autolinks www.a.": _repeat("www.a. "),
    "paragraphs x": _repeat("x\n\n"),
}


# --- the child: Django settings loaded, renderers imported ------------------------------


def _renderers() -> dict[str, Callable[[str], str] | None]:
    from corpus.rendering import render_markdown, sanitize_html

    out: dict[str, Callable[[str], str] | None] = {
        "copy (baseline)": lambda text: "".join([text]),
        "nh3 alone (baseline)": sanitize_html,
        "cmarkgfm + nh3": render_markdown,
    }
    try:
        from markdown_it import MarkdownIt

        # CommonMark with raw HTML and GFM tables and strikethrough, as cmark-gfm is used.
        md = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
        out["markdown-it-py + nh3"] = lambda text: sanitize_html(md.render(text))
    except ImportError:
        out["markdown-it-py + nh3"] = None
    try:
        import markdown
        from markdown.extensions.fenced_code import FencedCodeExtension
        from markdown.extensions.sane_lists import SaneListExtension
        from markdown.extensions.tables import TableExtension

        def python_markdown(text: str) -> str:
            # The pipeline corpus.rendering had before issue 12.
            html = markdown.markdown(
                text,
                extensions=[
                    TableExtension(use_align_attribute=True),
                    FencedCodeExtension(),
                    SaneListExtension(),
                ],
                output_format="html",
            )
            return sanitize_html(html)

        out["Python-Markdown + nh3"] = python_markdown
    except ImportError:
        out["Python-Markdown + nh3"] = None  # removed from pyproject.toml in issue 12
    return out


def _ordinary() -> list[str]:
    """Real documents: the demo seed's, this repository's README and docs, a task document."""
    from tasks.management.commands import seed_demo

    docs = [seed_demo.PROFILE, seed_demo.PROJECT, seed_demo.REPO]
    root = Path(c.SRC)
    for path in [root / "README.md", *sorted((root / "docs").glob("*.md"))]:
        docs.append(path.read_text())
    return docs


def _best(render: Callable[[str], str], text: str, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        render(text)
        best = min(best, time.perf_counter() - started)
    return best


def child(quick: bool) -> dict[str, Any]:
    import django

    django.setup()
    from django.conf import settings

    default_limit = settings.ETHER_MAX_RENDER_BYTES
    # Measure past the default limit too, up to the body limit (production refuses those).
    settings.ETHER_MAX_RENDER_BYTES = BODY_LIMIT

    from corpus.errors import MarkdownTooLarge
    from corpus.rendering import render_markdown

    renderers = _renderers()
    rounds = 1 if quick else 5
    docs = _ordinary()
    total_bytes = sum(len(d.encode()) for d in docs)
    ordinary: dict[str, Any] = {}
    for name, render in renderers.items():
        if render is None:
            continue
        seconds = sum(_best(render, doc, rounds) for doc in docs)
        ordinary[name] = {"seconds": seconds, "mb_per_s": total_bytes / seconds / 1e6}

    sizes = QUICK_SIZES if quick else FULL_SIZES
    # Seconds; None: not tried (a smaller size took too long); a string: the error raised.
    pathological: dict[str, dict[str, dict[str, float | str | None]]] = {}
    for name, render in renderers.items():
        if render is None:
            continue
        slow = "Python-Markdown" in name
        allowed = (QUICK_SIZES[:1] if quick else SLOW_SIZES) if slow else sizes
        per_case: dict[str, dict[str, float | str | None]] = {}
        for case, make in PATHOLOGICAL.items():
            per_case[case] = {}
            gave_up = False
            for size in allowed:
                if gave_up:
                    per_case[case][str(size)] = None
                    continue
                try:
                    seconds = _best(render, make(size), 1 if size >= 256 * 1024 else rounds)
                except Exception as error:  # Python-Markdown: RecursionError on nesting
                    per_case[case][str(size)] = f"{type(error).__name__}"
                    gave_up = True
                    continue
                per_case[case][str(size)] = seconds
                gave_up = seconds > GIVE_UP_SECONDS
            report.progress(name, len(per_case), len(PATHOLOGICAL))
        pathological[name] = per_case

    # What production does past the limit: refuse, before any parsing.
    over = "[" * (default_limit + 1)
    settings.ETHER_MAX_RENDER_BYTES = default_limit
    started = time.perf_counter()
    with contextlib.suppress(MarkdownTooLarge):
        render_markdown(over)
    refusal = time.perf_counter() - started
    return {
        "rounds": rounds,
        "ordinary_bytes": total_bytes,
        "ordinary_docs": len(docs),
        "ordinary": ordinary,
        "pathological": pathological,
        "sizes": sizes,
        "default_limit": default_limit,
        "refusal_seconds": refusal,
    }


# --- the parent: runs the child, writes the tables --------------------------------------


def _ms(seconds: float | str | None) -> str:
    if seconds is None:
        return "skipped"
    if isinstance(seconds, str):
        return seconds
    return f"{seconds * 1000:,.1f}" if seconds < 100 else f"{seconds * 1000:,.0f}"


def _tables(data: dict[str, Any]) -> tuple[str, list[str]]:
    base = data["ordinary"]["nh3 alone (baseline)"]["seconds"]
    ordinary = report.table(
        ["renderer", "ms for all", "MB/s", "ratio to nh3 alone"],
        [
            [name, _ms(row["seconds"]), row["mb_per_s"], row["seconds"] / base]
            for name, row in data["ordinary"].items()
        ],
    )
    # The table stays a bare table (every benchmark's "table" is one); its caption is
    # the first of the extras, printed right under it.
    caption = (
        f"Above: ordinary documents, {data['ordinary_docs']} of them, "
        f"{data['ordinary_bytes']:,} bytes, each rendered on its own (best of {data['rounds']})."
    )
    sizes = [str(s) for s in data["sizes"]]
    rows = []
    for name, cases in data["pathological"].items():
        row: list[Any] = [name]
        for size in sizes:
            measured = [
                (t, case)
                for case, times in cases.items()
                if isinstance(t := times.get(size), float)
            ]
            skipped = any(not isinstance(times.get(size, 0.0), float) for times in cases.values())
            if not measured:
                row.append("—")
                continue
            worst, case = max(measured)
            row.append(f"{_ms(worst)} ({case}{', some skipped or failed' if skipped else ''})")
        rows.append(row)
    worst = report.table(["renderer", *(f"{int(s) // 1024} KiB: worst ms" for s in sizes)], rows)
    worst = "Pathological corpus, worst case per size (ms, and which case):\n\n" + worst
    biggest = sizes[-1]
    names = [n for n in data["pathological"] if "Python-Markdown" not in n]
    detail = report.table(
        ["case", *names],
        [
            [case, *(_ms(data["pathological"][n][case].get(biggest)) for n in names)]
            for case in PATHOLOGICAL
        ],
    )
    detail = f"Every pathological case at {int(biggest) // 1024} KiB (ms):\n\n" + detail
    extras = [caption, worst, detail]
    slow = next((n for n in data["pathological"] if "Python-Markdown" in n), None)
    if slow is not None:
        slow_sizes = sorted({s for times in data["pathological"][slow].values() for s in times})
        slow_sizes.sort(key=int)
        extras.append(
            f"{slow}, small sizes only (ms):\n\n"
            + report.table(
                ["case", *(f"{int(s) // 1024} KiB" for s in slow_sizes)],
                [
                    [case, *(_ms(times.get(s)) for s in slow_sizes)]
                    for case, times in data["pathological"][slow].items()
                ],
            )
        )
    extras.append(
        f"Past ETHER_MAX_RENDER_BYTES ({data['default_limit']:,} bytes) the answer is a 413 "
        f"before any parsing: {_ms(data['refusal_seconds'])} ms."
    )
    return ordinary, extras


async def run(quick: bool) -> dict[str, Any]:
    env = c.django_env()
    done = subprocess.run(
        [c.PY, "-m", "bench.bench_markdown", "--child", *(["--quick"] if quick else [])],
        cwd=c.SRC,
        env=env,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    data = json.loads(done.stdout.strip().splitlines()[-1])
    table, tables = _tables(data)
    return {"table": table, "tables": tables, "results": data}


if __name__ == "__main__" and "--child" in sys.argv:
    print(json.dumps(child("--quick" in sys.argv)))
