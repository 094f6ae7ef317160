"""The HTTP side of the harness client: one ``httpx.Client``, the harness key, problem
documents as exceptions, and retries that honour ``Retry-After``.

Every POST carries an ``Idempotency-Key`` and a retry sends the same key again, so a
request whose answer was lost (a timeout, a dropped connection, a 503) is retried without
doing anything twice: the server answers the stored result (docs/api.md, Idempotency).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from ether_client.run import Run

log = logging.getLogger("ether_client")

# Statuses that say "not now" rather than "no": retried after Retry-After (or a backoff).
RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})
# 409s that are about the request, not the task: a request with the same key still running.
RETRYABLE_CODES = frozenset({"request_in_flight"})


class EtherError(Exception):
    """A problem document from the server (RFC 9457): ``status``, ``code``, ``detail``."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        body: Mapping[str, Any],
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {detail}")
        self.status, self.code, self.detail, self.body = status, code, detail, dict(body)
        self.retry_after = retry_after  # seconds, from the Retry-After header (lease_held)


class EtherUnavailable(Exception):
    """The server could not be reached (or kept answering 503) within the retries."""


def _retry_after(response: httpx.Response | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds; HTTP dates are not sent)."""
    if response is None:
        return None
    raw = response.headers.get("Retry-After", "").strip()
    return float(raw) if raw.isdigit() else None


def _problem(response: httpx.Response) -> EtherError:
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    code = str(body.get("code") or "http_error")
    detail = str(body.get("detail") or response.reason_phrase)
    return EtherError(response.status_code, code, detail, body, _retry_after(response))


@dataclass(frozen=True)
class Retry:
    """How often and how long to retry: ``attempts`` in all, waiting ``Retry-After`` when
    the server sends one (at most ``max_wait``), else ``base * 2**n`` (at most ``max_wait``)."""

    attempts: int = 6
    base: float = 0.5
    max_wait: float = 30.0

    def wait(self, attempt: int, response: httpx.Response | None) -> float:
        told = _retry_after(response)
        backoff = self.base * (2**attempt)
        return min(self.max_wait, told if told is not None else backoff)


class EtherClient:
    """A harness app's connection to Ether: ``EtherClient(base_url, key, app_id=...)``."""

    def __init__(
        self,
        base_url: str,
        key: str,
        *,
        app_id: str,
        timeout: float = 30.0,
        retry: Retry | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.app_id = app_id
        self.retry = retry or Retry()
        self._sleep = sleep
        self.http = httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {key}", "Accept": "application/json"},
            timeout=timeout,
            transport=transport,
        )
        # The context pack and documents by URL: (ETag, parsed body) for If-None-Match.
        self._etag_cache: dict[str, tuple[str, Any]] = {}

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> EtherClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- transport ----------------------------------------------------------------------

    def request(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
        timeout: float | None = None,
    ) -> httpx.Response:
        """One call with retries. A POST always carries an Idempotency-Key (a fresh one
        unless given), and every retry of it sends the same key. Problems raise
        ``EtherError``; what the retries could not get through raises ``EtherUnavailable``."""
        sent = dict(headers or {})
        if method.upper() == "POST":
            sent["Idempotency-Key"] = idempotency_key or f"ec-{uuid.uuid4()}"
        extra: dict[str, Any] = {}
        if timeout is not None:
            extra["timeout"] = timeout
        last: str = ""
        for attempt in range(self.retry.attempts):
            response: httpx.Response | None = None
            try:
                response = self.http.request(
                    method, url, json=json, params=params, headers=sent, **extra
                )
            except httpx.TransportError as error:
                last = f"{type(error).__name__}: {error}"
            else:
                if response.status_code < 400 or response.status_code == 304:
                    return response
                problem = _problem(response)
                retryable = response.status_code in RETRYABLE_STATUSES or (
                    response.status_code == 409 and problem.code in RETRYABLE_CODES
                )
                if not retryable:
                    raise problem
                last = str(problem)
            if attempt + 1 < self.retry.attempts:
                pause = self.retry.wait(attempt, response)
                log.info("retrying %s %s in %.1f s (%s)", method, url, pause, last)
                self._sleep(pause)
        raise EtherUnavailable(f"{method} {self.base_url}{url}: gave up after retries ({last})")

    def get_json(self, url: str, **params: Any) -> Any:
        return self.request("GET", url, params=params or None).json()

    def post_json(self, url: str, body: Any, **kwargs: Any) -> Any:
        response = self.request("POST", url, json=body, **kwargs)
        return response.json() if response.content else None

    def get_cached(self, url: str, params: Mapping[str, Any] | None = None) -> Any:
        """A GET revalidated with If-None-Match: a 304 answers the body kept from before."""
        key = str(httpx.URL(url, params=params))
        kept = self._etag_cache.get(key)
        headers = {"If-None-Match": kept[0]} if kept else None
        response = self.request("GET", url, params=params, headers=headers)
        if response.status_code == 304 and kept is not None:
            return kept[1]
        body = (
            response.json()
            if response.headers.get("Content-Type", "").startswith("application/json")
            else response.text
        )
        etag = response.headers.get("ETag")
        if etag:
            self._etag_cache[key] = (etag, body)
        return body

    # --- finding and claiming work ------------------------------------------------------

    def tasks(self, status: str = "ready") -> list[dict[str, Any]]:
        """The org's tasks this app may claim (every page of ``GET /api/harness/tasks``)."""
        rows: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"status": status, "limit": 200}
            if cursor:
                params["cursor"] = cursor
            page = self.get_json("/api/harness/tasks", **params)
            rows += page["data"]
            cursor = page.get("next_cursor")
            if not cursor:
                return rows

    def execution(self, task_id: str) -> dict[str, Any]:
        """The bundle, without claiming."""
        return self.get_json(f"/api/harness/tasks/{task_id}/execution")

    def claim(self, task_id: str) -> Run:
        from ether_client.run import Run

        body = self.post_json(f"/api/harness/tasks/{task_id}/claim", {"app_id": self.app_id})
        return Run(self, body)

    def claim_next(self, wait: int = 30) -> Run | None:
        """The oldest ready task this app may take, waiting up to ``wait`` seconds (0-30)
        on the server; None when none came."""
        from ether_client.run import Run

        response = self.request(
            "POST",
            "/api/harness/claim-next",
            json={"app_id": self.app_id, "wait": wait},
            timeout=wait + 30.0,
        )
        return None if response.status_code == 204 else Run(self, response.json())

    def wait_for_task(
        self, *, give_up: float | None = None, wake: Callable[[float], bool] | None = None
    ) -> Run | None:
        """Claims the next task, however long it takes (None after ``give_up`` idle
        seconds). ``wake(seconds)`` may replace the server's long poll between tries (a
        webhook receiver's wait for ``task.ready``): it returns when woken or timed out."""
        deadline = None if give_up is None else time.monotonic() + give_up
        while True:
            left = 30.0 if deadline is None else max(0.0, deadline - time.monotonic())
            if wake is not None:
                run = self.claim_next(wait=0)
                if run is None and left > 0:
                    wake(min(left, 30.0))
                    run = self.claim_next(wait=0)
            else:
                run = self.claim_next(wait=int(min(30.0, left)))
            if run is not None:
                return run
            if deadline is not None and time.monotonic() >= deadline:
                return None

    # --- context ------------------------------------------------------------------------

    def context_pack(self, task_id: str, budget_bytes: int | None = None) -> dict[str, Any]:
        """The task's context in one call; revalidated with its ETag when asked again."""
        params: dict[str, Any] = {"task_id": task_id}
        if budget_bytes is not None:
            params["budget_bytes"] = budget_bytes
        return self.get_cached("/api/harness/context/pack", params)

    def document(self, task_id: str, doc: str) -> str:
        """One document's markdown by id or path (ETag-cached)."""
        return self.get_cached(f"/api/harness/context/doc/{doc}", {"task_id": task_id})

    def tools(self) -> list[dict[str, Any]]:
        return self.get_json("/api/harness/tools")["tools"]

    def skills(self, domain: str | None = None) -> dict[str, Any]:
        return self.get_json("/api/harness/skills", **({"domain": domain} if domain else {}))
