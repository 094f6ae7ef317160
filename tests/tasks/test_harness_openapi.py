"""Ether's own OpenAPI (drf-spectacular) for ``/v1`` agrees with Everruns' published one
(tests/everruns/everruns-openapi.json) on every path, method, parameter and status code
(docs/contract.md §4; issue 17).

Agreement means an Everruns client finds everything it may call or expect: the same
paths and methods; each of Everruns' parameters with its place and whether it is
required (Ether's own extras, such as ``resolved``, ``limit`` or ``Idempotency-Key``, are
all optional); each of Everruns' status codes, and the same success codes. Everruns'
500 is the one exception: Ether's contract promises never to answer 500 (a database in
trouble is 503), so Ether does not document it.
"""

from __future__ import annotations

import pytest
import yaml

from tests.harness_schema import PREFIX, spec
from tests.helpers import Caller

pytestmark = pytest.mark.django_db
METHODS = {"get", "post", "put", "patch", "delete"}
NEVER = {"500"}  # see the module's docstring


@pytest.fixture(scope="module")
def ours(django_db_blocker):
    with django_db_blocker.unblock():
        return yaml.safe_load(Caller(None).get("/api/schema/").content)


def everruns_paths():
    return sorted(p for p in spec()["paths"] if PREFIX.match(p))


def operations(paths: dict, path: str) -> dict:
    return {m: op for m, op in paths[path].items() if m in METHODS}


def test_the_same_v1_paths_and_methods(ours):
    mine = sorted(p for p in ours["paths"] if p.startswith("/v1/"))
    assert mine == everruns_paths()
    for path in everruns_paths():
        assert set(operations(ours["paths"], path)) == set(operations(spec()["paths"], path)), path


@pytest.mark.parametrize("path", everruns_paths())
def test_every_everruns_parameter_is_ours_and_our_extras_are_optional(ours, path):
    for method, theirs in operations(spec()["paths"], path).items():
        mine = operations(ours["paths"], path)[method]
        our_params = {(p["name"], p["in"]): p for p in mine.get("parameters", [])}
        their_params = {(p["name"], p["in"]): p for p in theirs.get("parameters", [])}
        for key, param in their_params.items():
            assert key in our_params, (method, path, key)
            assert our_params[key].get("required", False) == param.get("required", False), (
                method,
                path,
                key,
            )
        for key, param in our_params.items():
            if key not in their_params:
                assert not param.get("required", False), (method, path, key, "extra, required")
        # A body where Everruns takes one; where it takes none, ours is optional.
        if "requestBody" in theirs:
            assert "requestBody" in mine, (method, path)
        else:
            assert not mine.get("requestBody", {}).get("required", False), (method, path)


@pytest.mark.parametrize("path", everruns_paths())
def test_every_everruns_status_code_is_documented_and_successes_match(ours, path):
    for method, theirs in operations(spec()["paths"], path).items():
        mine = set(operations(ours["paths"], path)[method]["responses"])
        their_codes = set(theirs["responses"]) - NEVER
        assert their_codes <= mine, (method, path, sorted(their_codes - mine))
        successes = {c for c in mine if c.startswith("2")}
        assert successes == {c for c in their_codes if c.startswith("2")}, (method, path)
