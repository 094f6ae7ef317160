"""Schemathesis against our own OpenAPI schema (``/api/schema/``), every operation, in
process through Django's WSGI handler, with real credentials and real ids.

Each generated request must get no 5xx, an answer that matches the schema (status, content
type, headers, body), a 4xx for data the schema forbids, and a 401 without credentials.
Positive data is not required to succeed: a random but well-formed task id is a 404.

CI runs a bounded number of examples per operation; ``pytest -m slow`` runs many more.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig

from api.heartbeat import worker_beat
from tests.helpers import World

CONFIG = {
    "base-url": "http://testserver",
    # Unknown query parameters are ignored, as most HTTP APIs do (unknown body fields are
    # refused: docs/api.md), so the fuzzer does not invent them.
    "generation": {"mode": "all", "allow-extra-parameters": False},
    "checks": {
        # A body over ETHER_MAX_BODY_BYTES is refused with 413: a rejection like any 4xx.
        "negative_data_rejection": {
            "expected-statuses": [400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 428, 429]
        },
        # Well-formed ids that name nothing are 404, and most writes need a live lease.
        "positive_data_acceptance": {"enabled": False},
        # Needs links between operations that our schema does not declare.
        "use_after_free": {"enabled": False},
        "ensure_resource_availability": {"enabled": False},
    },
    # The coverage phase enumerates every boundary of every field: minutes per run.
    "phases": {"coverage": {"enabled": False}, "stateful": {"enabled": False}},
}


def served_schema() -> dict[str, Any]:
    """Exactly what ``GET /api/schema/`` serves, built at collection time (no request)."""
    from drf_spectacular.generators import SchemaGenerator
    from drf_spectacular.renderers import OpenApiJsonRenderer

    document = SchemaGenerator().get_schema(request=None, public=True)
    return json.loads(OpenApiJsonRenderer().render(document))


# The SSE stream never ends, so the WSGI handler would read it forever; it is covered by
# the real-server tests in tests/tasks/test_realtime_server.py.
schema = schemathesis.openapi.from_dict(
    served_schema(), config=SchemathesisConfig.from_dict(CONFIG)
)
schema.app = WSGIHandler()  # requests (and the checks' own re-sends) go to it in process
schema = schema.exclude(path_regex=r"/events$")


@schema.hook
def filter_query(context: Any, query: dict[str, Any] | None) -> bool:
    """Query strings follow Django's QueryDict, as docs/api.md says: an empty value is no
    value (``?limit=`` is the default limit) and a repeated one counts once (the last).
    Such queries are valid by those rules, so they are not offered as negative data."""
    for value in (query or {}).values():
        if value == "" or isinstance(value, list | dict):
            return False
    return True


@pytest.fixture
def app(ids: dict[str, str]) -> Iterator[WSGIHandler]:
    """The in-process WSGI application. Its handler closes the connection after each
    request, as a server must; the test's transaction lives on that connection, so (like
    Django's test client) the signal is held off for the test. After ``ids``: Django's
    test client connects the signal again after each of its requests."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield schema.app
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def ids(world: World) -> dict[str, str]:
    """Real ids for the path parameters, so requests reach past the 404 of a lookup. The
    sweeper has beaten, as it does on a running server: /readyz answers 200, not its
    documented 503 (which tests/operating/test_health.py covers)."""
    worker_beat("sweep_leases")
    task = world.task()
    other = world.task()
    claim = world.harness().claim(other.public_id)
    assert claim.status_code == 200
    docs = world.person().get("/api/context/docs").json()["data"]
    return {
        "task_id": task.public_id,
        "claimed_task_id": other.public_id,
        "run_id": claim.json()["run_id"],
        "doc_id": docs[0]["id"] if docs else "doc_" + "0" * 32,
        "app_id": world.app.app_id,
        "harness_id": "generic",
    }


def prepare(case: Any, world: World, ids: dict[str, str]) -> dict[str, str]:
    """Credentials by route, and real ids for about half of the cases (chosen by a hash of
    the generated values, so a failing example replays the same way)."""
    path = case.operation.path
    secret = world.key if path.startswith("/api/harness/") else world.token
    params = case.path_parameters or {}
    digest = hashlib.sha256(repr(sorted(params.items())).encode()).digest()[0]
    if params and digest % 2 == 0:
        for name in params:
            if name in ids:
                params[name] = ids[name]
    return {"Authorization": f"Bearer {secret}"}


def check(case: Any, app: WSGIHandler, world: World, ids: dict[str, str]) -> None:
    headers = prepare(case, world, ids)
    response = case.call(headers=headers)
    case.validate_response(response, headers=headers)


FAST = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
    database=None,
)


@schema.parametrize()
@FAST
def test_every_operation_conforms_to_the_schema(case, app, world, ids):
    check(case, app, world, ids)


@pytest.mark.slow
@schema.parametrize()
@settings(FAST, max_examples=500)
def test_every_operation_conforms_to_the_schema_at_length(case, app, world, ids):
    check(case, app, world, ids)


def test_errors_are_documented_as_problem_json(db):
    """The fix for schemathesis' first finding: every documented error names the media
    type the server really sends, and no success is filed under it."""
    document = served_schema()
    seen = 0
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                content = response.get("content", {})
                if int(status) >= 400:
                    assert set(content) == {"application/problem+json"}, (method, path, status)
                    seen += 1
                else:
                    assert "application/problem+json" not in content, (method, path, status)
    assert seen > 100
