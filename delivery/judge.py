"""The judge's scope rule: a submitted pull request must point into the task's repository
and its branch must match the task's ``branch_scope`` glob (CONTRACT §3).

The comparison is on parsed URLs, exact host and path, so ``github.com.evil.io`` or
``…/acme/widgets-fork/pull/1`` do not pass for ``https://github.com/acme/widgets``.
"""

from __future__ import annotations

import re
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
