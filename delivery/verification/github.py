"""The few GitHub REST calls the PR check needs, with plain httpx.

Answers are read defensively (a field of the wrong type reads as missing), since the
API URL is configurable and may point at a GitHub Enterprise server or a proxy.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

API_VERSION = "2022-11-28"
TIMEOUT_SECONDS = 10.0
CHECK_RUNS_MAX = 100


class GitHubUnavailable(Exception):
    """GitHub could not answer now (rate limit, 5xx, network): try again later.
    ``retry_at`` is when GitHub said its limit resets, if it said."""

    def __init__(self, message: str, *, retry_at: datetime | None = None) -> None:
        super().__init__(message)
        self.retry_at = retry_at


@dataclass(frozen=True)
class PullRequest:
    number: int
    state: str  # open | closed
    merged: bool
    base_repository: str
    head_branch: str
    head_sha: str
    url: str


def _str(data: Any, *keys: str) -> str:
    for key in keys:
        data = data.get(key) if isinstance(data, dict) else None
    return data if isinstance(data, str) else ""


def _rate_limit_reset(response: httpx.Response) -> datetime | None:
    reset = response.headers.get("x-ratelimit-reset", "")
    if reset.isdigit():
        return datetime.fromtimestamp(int(reset), tz=UTC)
    retry = response.headers.get("retry-after", "")
    if retry.isdigit():
        return datetime.now(tz=UTC) + timedelta(seconds=int(retry))
    return None


class GitHub:
    def __init__(self, *, api_url: str, token: str, timeout: float = TIMEOUT_SECONDS) -> None:
        self.api_url = api_url.rstrip("/")
        self.client = httpx.Client(
            timeout=timeout,
            follow_redirects=False,
            headers={
                "Authorization": f"Bearer {token}",
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": API_VERSION,
                "User-Agent": "ether-delivery-check",
            },
        )

    def __enter__(self) -> GitHub:
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.close()

    def _get(self, path: str, **params: Any) -> dict[str, Any] | None:
        """The JSON object at ``path``; None for 404; GitHubUnavailable when GitHub
        cannot answer now."""
        url = f"{self.api_url}{path}"
        try:
            response = self.client.get(url, params=params or None)
        except httpx.HTTPError as exc:
            raise GitHubUnavailable(f"GET {url} failed: {exc.__class__.__name__}") from exc
        if response.status_code == 404:
            return None
        limited = response.headers.get("x-ratelimit-remaining") == "0"
        if response.status_code in (403, 429) and (limited or "retry-after" in response.headers):
            raise GitHubUnavailable(
                f"GitHub's rate limit is exhausted ({response.status_code} on GET {url})",
                retry_at=_rate_limit_reset(response),
            )
        if response.status_code >= 400:
            raise GitHubUnavailable(f"GitHub answered {response.status_code} on GET {url}")
        try:
            data = response.json()
        except ValueError as exc:
            raise GitHubUnavailable(f"GitHub answered no JSON on GET {url}") from exc
        if not isinstance(data, dict):
            raise GitHubUnavailable(f"GitHub answered no JSON object on GET {url}")
        return data

    def pull_request(self, repository: str, number: int) -> PullRequest | None:
        data = self._get(f"/repos/{repository}/pulls/{number}")
        if data is None:
            return None
        return PullRequest(
            number=data.get("number") if isinstance(data.get("number"), int) else number,
            state=_str(data, "state"),
            merged=data.get("merged") is True or bool(_str(data, "merged_at")),
            base_repository=_str(data, "base", "repo", "full_name"),
            head_branch=_str(data, "head", "ref"),
            head_sha=_str(data, "head", "sha"),
            url=_str(data, "html_url"),
        )

    def check_runs(self, repository: str, sha: str) -> list[dict[str, Any]]:
        data = self._get(f"/repos/{repository}/commits/{sha}/check-runs", per_page=CHECK_RUNS_MAX)
        runs = data.get("check_runs") if data else None
        return [
            {
                "name": _str(run, "name"),
                "status": _str(run, "status"),
                "conclusion": _str(run, "conclusion") or None,
                "url": _str(run, "html_url") or None,
            }
            for run in (runs if isinstance(runs, list) else [])
            if isinstance(run, dict)
        ]
