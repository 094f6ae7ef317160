"""The judge: two plain, explainable checks of a finished run.

* Scope (enforced): a submitted pull request must point into the task's repository and
  its branch must match the task's ``branch_scope`` glob (docs/contract.md §3). The URL is read
  as a browser reads it (``delivery.links``, WHATWG) and anything a browser could read
  otherwise is refused; then scheme, host and ``owner/repo`` must be the repository's,
  so ``github.com.evil.io``, ``evil.example\\@github.com`` or ``…/widgets-fork/pull/1``
  do not pass for ``https://github.com/acme/widgets``.
* Definition of done (shown, never enforced): whether the harness *mentions* each item
  in its working summary or in its run's steps (``mentioned``/``not_mentioned``, never
  "met": nothing is run). See ``DOD_METHOD`` for the exact rule.

Whether the PR exists on GitHub, and its base, head, state and check runs, is verified
after the result is stored (``delivery.verification``), never inside the request.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from delivery.links import UnsafeLink, link_parse
from tasks.errors import OutOfScope
from tasks.models import Task

PR_PATH = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/pulls?/(?P<number>[1-9][0-9]*)/?$")


def _repo_key(url: str) -> tuple[str, str, str] | None:
    """The repository as (scheme, host, lower-case path); None for a URL that is not a
    plain link (the repository is set by staff, but it is parsed by the same rules)."""
    try:
        link = link_parse(url)
    except UnsafeLink:
        return None
    return link.scheme, link.host, link.path.rstrip("/").removesuffix(".git").lower()


def pr_scope(task: Task, pr: dict[str, Any]) -> tuple[str | None, list[str]]:
    """The PR's href as a browser reads it, and every reason it is out of scope (empty
    when it is in scope). The href is None when the URL is refused."""
    problems: list[str] = []
    url = pr.get("url", "")
    href = None
    try:
        link = link_parse(url)
    except UnsafeLink as exc:
        problems.append(f"artifact.pr.url {url!r} is refused: {exc}.")
    else:
        match = PR_PATH.match(link.path)
        repo_key = _repo_key(task.repo.url)
        if match is None:
            problems.append(f"artifact.pr.url {url!r} is not a pull request URL.")
        elif repo_key is None or (link.scheme, link.host, "/" + match["repo"].lower()) != repo_key:
            problems.append(f"artifact.pr.url points outside {task.repo.url}.")
        elif int(match["number"]) != pr.get("number"):
            problems.append("artifact.pr.number does not match the number in its URL.")
        else:
            href = link.href
    branch = pr.get("branch", "")
    if not fnmatchcase(branch, task.branch_scope):
        problems.append(
            f"Branch {branch!r} is outside the task's branch_scope {task.branch_scope!r}."
        )
    return (None if problems else href), problems


def check_artifact(task: Task, artifact: dict[str, Any] | None) -> dict[str, Any] | None:
    """The artifact to store, its PR URL replaced by the href a browser reads (the one
    pages link to); raises ``OutOfScope`` for a PR outside the task's repository or branch
    scope, or a URL that is not read alike by every parser."""
    if not artifact or "pr" not in artifact:
        return artifact
    href, problems = pr_scope(task, artifact["pr"])
    if problems:
        raise OutOfScope(" ".join(problems), extra={"errors": {"artifact.pr": problems}})
    return {**artifact, "pr": {**artifact["pr"], "url": href}}


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
    """For each item: ``{text, status, evidence}``. ``status`` is ``mentioned`` (found in
    the harness's own words: evidence says where and quotes it) or ``not_mentioned``
    (evidence None). Never "met": a mention is what the harness says, not a check."""
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
                "status": "mentioned" if found is not None else "not_mentioned",
                "evidence": f"{found.where}: {_quote(found.text)}" if found else None,
            }
        )
    return checked
