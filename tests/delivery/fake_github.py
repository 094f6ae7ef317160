"""A local stand-in for GitHub's REST API: a real HTTP server on 127.0.0.1, in a thread,
serving JSON of the shape GitHub serves (trimmed recordings of ``GET
/repos/{owner}/{repo}/pulls/{n}`` and ``GET /repos/{owner}/{repo}/commits/{sha}/check-runs``),
and the rate-limit and 404 answers GitHub gives."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.servers import loopback_http

HEAD_SHA = "6dcb09b5b57875f334f61aebed695e2e4193db5e"


def pull_json(
    full_name: str, number: int, *, branch: str, sha: str = HEAD_SHA, **over: Any
) -> dict:
    owner = full_name.split("/")[0]
    base = {
        "url": f"https://api.github.com/repos/{full_name}/pulls/{number}",
        "id": 1296269,
        "node_id": "MDExOlB1bGxSZXF1ZXN0MQ==",
        "html_url": f"https://github.com/{full_name}/pull/{number}",
        "number": number,
        "state": "open",
        "locked": False,
        "title": "Add /healthz",
        "user": {"login": "ether-bot", "id": 1, "type": "Bot"},
        "draft": False,
        "merged": False,
        "merged_at": None,
        "mergeable": True,
        "head": {
            "label": f"{owner}:{branch}",
            "ref": branch,
            "sha": sha,
            "repo": {"id": 1296269, "full_name": full_name, "private": False},
        },
        "base": {
            "label": f"{owner}:main",
            "ref": "main",
            "sha": "9049f1265b7d61be4a8904a9a27120d2064dab3b",
            "repo": {"id": 1296269, "full_name": full_name, "private": False},
        },
    }
    base.update(over)
    return base


def check_runs_json(sha: str = HEAD_SHA) -> dict:
    def run(n: int, name: str, status: str, conclusion: str | None) -> dict:
        return {
            "id": 4 + n,
            "head_sha": sha,
            "node_id": "MDg6Q2hlY2tSdW40",
            "external_id": "",
            "url": f"https://api.github.com/repos/acme/widgets/check-runs/{4 + n}",
            "html_url": f"https://github.com/acme/widgets/runs/{4 + n}",
            "status": status,
            "conclusion": conclusion,
            "started_at": "2026-12-04T05:00:00Z",
            "completed_at": "2026-12-04T05:03:00Z" if status == "completed" else None,
            "name": name,
            "app": {"id": 1, "slug": "github-actions", "name": "GitHub Actions"},
        }

    return {
        "total_count": 3,
        "check_runs": [
            run(0, "test (3.12)", "completed", "success"),
            run(1, "lint", "completed", "failure"),
            run(2, "build", "in_progress", None),
        ],
    }


RATE_LIMITED = {
    "message": "API rate limit exceeded for installation ID 1.",
    "documentation_url": "https://docs.github.com/rest/overview/resources-in-the-rest-api#rate-limiting",
}
NOT_FOUND = {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}


@dataclass
class FakeGitHub:
    """Routes: path → (status, JSON, extra headers). ``requests`` records what was asked
    (method, path, Authorization header); ``delay`` slows every answer."""

    url: str = ""
    routes: dict[str, tuple[int, Any, dict[str, str]]] = field(default_factory=dict)
    requests: list[tuple[str, str, str]] = field(default_factory=list)
    delay: float = 0.0

    def answer(self, path: str, status: int, body: Any, **headers: str) -> None:
        self.routes[path] = (status, body, headers)


@contextmanager
def fake_github() -> Iterator[FakeGitHub]:
    fake = FakeGitHub()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            fake.requests.append(("GET", self.path, self.headers.get("Authorization", "")))
            if fake.delay:
                time.sleep(fake.delay)
            path = self.path.split("?", 1)[0]
            status, body, headers = fake.routes.get(path, (404, NOT_FOUND, {}))
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("x-ratelimit-limit", headers.pop("x-ratelimit-limit", "5000"))
            self.send_header("x-ratelimit-remaining", headers.pop("x-ratelimit-remaining", "4999"))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    with loopback_http(Handler) as port:
        fake.url = f"http://127.0.0.1:{port}"
        yield fake
