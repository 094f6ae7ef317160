"""The routes under test, discovered from the served OpenAPI schema so that a new route
is covered without editing these tests, with real ids of one org to put in their paths."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from tests.helpers import World


@dataclass(frozen=True)
class Route:
    method: str
    template: str  # "/api/tasks/{task_id}/answer"

    @property
    def harness(self) -> bool:
        return self.template.startswith("/api/harness/")

    @property
    def params(self) -> list[str]:
        return re.findall(r"{(\w+)}", self.template)

    def path(self, ids: dict[str, str]) -> str:
        return re.sub(r"{(\w+)}", lambda m: ids[m.group(1)], self.template)

    def __str__(self) -> str:
        return f"{self.method} {self.template}"


def served_routes() -> list[Route]:
    from drf_spectacular.generators import SchemaGenerator
    from drf_spectacular.renderers import OpenApiJsonRenderer

    document = json.loads(OpenApiJsonRenderer().render(SchemaGenerator().get_schema(None, True)))
    return [
        Route(method.upper(), path)
        for path, operations in document["paths"].items()
        for method in operations
        if method in {"get", "post", "put", "patch", "delete"}
    ]


ROUTES = served_routes()
WRITES = [r for r in ROUTES if r.method in {"POST", "PUT", "PATCH"}]
# The SSE stream never ends on success; its error answers are plain JSON like the rest.
STREAMS = {"/api/tasks/{task_id}/events", "/api/activity/events"}


def real_ids(world: World) -> dict[str, str]:
    """Ids of the world's own org for every path parameter: a claimed task, its document,
    the app and a harness definition of the org. The sweeper has beaten, as on a running
    server, so /readyz is 200 (its 503 is tests/operating/test_health.py's)."""
    from api.heartbeat import worker_beat

    worker_beat("sweep_leases")
    task = world.task()
    claim = world.harness().claim(task.public_id)
    assert claim.status_code == 200, claim.content
    created = world.person().post(
        "/v1/harnesses",
        {"name": "acme-agent", "display_name": "Acme agent", "system_prompt": "Be careful."},
    )
    assert created.status_code == 201, created.content
    docs = world.person().get("/api/context/docs").json()["data"]
    return {
        "task_id": task.public_id,
        "doc_id": docs[0]["id"],
        "app_id": world.app.app_id,
        "harness_id": created.json()["id"],
        "run_id": claim.json()["run_id"],
    }


def caller_for(route: Route, world: World, *, outsider: bool = False) -> Any:
    if route.harness:
        return world.outsider_harness() if outsider else world.harness()
    return world.outsider() if outsider else world.person()
