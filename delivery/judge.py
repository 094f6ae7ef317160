"""The judge: two plain, explainable checks of a finished run.

* Scope (enforced): a submitted pull request must point into the task's repository and
  its branch must match the task's ``branch_scope`` glob (CONTRACT §3). The comparison is
  on parsed URLs, exact host and path, so ``github.com.evil.io`` or
  ``…/acme/widgets-fork/pull/1`` do not pass for ``https://github.com/acme/widgets``.
* Definition of done (shown, never enforced): whether the harness *mentions* each item
  in its working summary or in its run's steps. See ``DOD_METHOD`` for the exact rule.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any
from urllib.parse import SplitResult, urlsplit

from tasks.errors import OutOfScope
from tasks.models import Task

PR_PATH = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/pulls?/(?P<number>[1-9][0-9]*)/?$")


def _split(url: object) -> SplitResult | None:
    """The parsed URL, or None for anything that is not one (``urlsplit`` raises on some)."""
    if not isinstance(url, str):
        return None
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - a bad port only raises when read
    except ValueError:
        return None
    return parts


def _repo_key(url: str) -> tuple[str, str] | None:
    parts = _split(url)
    if parts is None or parts.scheme not in {"https", "http"} or not parts.hostname:
        return None
    return parts.hostname.lower(), parts.path.rstrip("/").removesuffix(".git").lower()


def pr_scope_problems(task: Task, pr: dict[str, Any]) -> list[str]:
    """Every reason the PR is out of scope; empty when it is in scope."""
    problems: list[str] = []
    url = pr.get("url", "")
    repo_key = _repo_key(task.repo.url)
    parts = _split(url)
    match = PR_PATH.match(parts.path) if parts and parts.scheme in {"https", "http"} else None
    if parts is None or match is None or not parts.hostname or parts.query or parts.fragment:
        problems.append(f"artifact.pr.url {url!r} is not a pull request URL.")
    else:
        host = parts.hostname.lower()
        if repo_key is None or (host, "/" + match["repo"].lower()) != repo_key:
            problems.append(f"artifact.pr.url points outside {task.repo.url}.")
        elif int(match["number"]) != pr.get("number"):
            problems.append("artifact.pr.number does not match the number in its URL.")
    branch = pr.get("branch", "")
    if not fnmatchcase(branch, task.branch_scope):
        problems.append(
            f"Branch {branch!r} is outside the task's branch_scope {task.branch_scope!r}."
        )
    return problems


def check_artifact(task: Task, artifact: dict[str, Any] | None) -> None:
    """Raises ``OutOfScope`` for a PR outside the task's repository or branch scope."""
    if not artifact or "pr" not in artifact:
        return
    problems = pr_scope_problems(task, artifact["pr"])
    if problems:
        raise OutOfScope(" ".join(problems), extra={"errors": {"artifact.pr": problems}})


# --- Definition of done: a mention check -------------------------------------------------

DOD_METHOD = (
    "Mention check, not verification: an item counts as mentioned when every significant "
    "word of it appears as a whole word in one line of the harness's working summary or in "
    "one of its step messages. Words are compared lower-cased, split on anything that is "
    "not a letter or digit, with a trailing 's' ignored (tests = test); common words "
    "(a, the, is, of, …) are not significant. The evidence quotes the first line or step "
    "that mentions it."
)

# Kept short on purpose: every word here is one the rule may skip, so it must carry no
# meaning of its own in a checklist item. Negations ("no", "not") stay significant.
STOPWORDS = frozenset(
    {
        *("a", "an", "the", "and", "or", "of", "to", "in", "on", "at", "by", "for", "from"),
        *("with", "into", "as", "is", "are", "be", "been", "it", "its", "this", "that"),
        *("these", "those", "there", "must", "should", "can", "will", "shall", "has"),
        *("have", "was", "were"),
    }
)
_WORD = re.compile(r"[^\W_]+")
EVIDENCE_CHARS = 160


def _words(text: str) -> list[str]:
    """Lower-cased words with a trailing plural 's' dropped (but keep 'is', 'has', 'ms')."""
    out = []
    for word in _WORD.findall(text.casefold()):
        out.append(word[:-1] if len(word) > 3 and word.endswith("s") else word)
    return out


def significant_words(item: str) -> list[str]:
    """The words of a checklist item the rule looks for, in order, once each."""
    seen: dict[str, None] = {}
    for word in _words(item):
        if word not in STOPWORDS:
            seen.setdefault(word, None)
    return list(seen)


@dataclass(frozen=True)
class Source:
    """One place the harness wrote something: a summary line or a step message."""

    where: str  # "working summary, line 3" | "step 12"
    text: str


def dod_sources(working_summary: str, steps: Iterable[tuple[int, str]]) -> list[Source]:
    """The working summary line by line, then each step (seq, user_message) in order."""
    sources = [
        Source(where=f"working summary, line {n}", text=line.strip())
        for n, line in enumerate(working_summary.splitlines(), start=1)
        if line.strip()
    ]
    sources += [Source(where=f"step {seq}", text=message) for seq, message in steps]
    return sources


def _quote(text: str) -> str:
    text = " ".join(text.split())
    if len(text) > EVIDENCE_CHARS:
        text = text[: EVIDENCE_CHARS - 1] + "…"
    return f"“{text}”"


def dod_check(items: Iterable[str], sources: list[Source]) -> list[dict[str, object]]:
    """For each item: ``{text, mentioned, evidence}``; evidence says where, or is None."""
    source_words = [(source, set(_words(source.text))) for source in sources]
    checked: list[dict[str, object]] = []
    for item in items:
        wanted = significant_words(item)
        found = next(
            (source for source, words in source_words if wanted and set(wanted) <= words),
            None,
        )
        checked.append(
            {
                "text": item,
                "mentioned": found is not None,
                "evidence": f"{found.where}: {_quote(found.text)}" if found else None,
            }
        )
    return checked
