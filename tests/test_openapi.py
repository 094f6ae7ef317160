"""The OpenAPI schema stays valid and documents every route with its errors."""

from __future__ import annotations

import re

import yaml
from django.urls import URLPattern, URLResolver, get_resolver
from openapi_spec_validator import validate

from tests.helpers import Caller

# Routes that need no credentials: they hold no secret.
PUBLIC = {"/api/config"}


def _api_routes(resolver: URLResolver, prefix: str = "") -> list[str]:
    routes = []
    for entry in resolver.url_patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            routes += _api_routes(entry, route)
        elif (
            isinstance(entry, URLPattern)
            and route.startswith("api/")
            and not route.startswith(("api/schema", "api/docs"))
        ):
            routes.append("/" + re.sub(r"<\w+:(\w+)>", r"{\1}", route))
    return routes


def test_schema_is_valid_openapi_3_and_lists_every_route(db):
    response = Caller(None).get("/api/schema/")
    assert response.status_code == 200
    schema = yaml.safe_load(response.content)
    validate(schema)
    assert schema["openapi"].startswith("3.")
    routes = _api_routes(get_resolver())
    assert len(routes) >= 13
    assert set(routes) <= set(schema["paths"]), set(routes) - set(schema["paths"])


def test_every_operation_documents_its_errors_as_problem_documents(db):
    schema = yaml.safe_load(Caller(None).get("/api/schema/").content)
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            if path in PUBLIC:
                assert not operation.get("security") or {} in operation["security"]
                continue
            assert "401" in responses and "503" in responses, (method, path)
            if method == "post":
                # Every POST is @idempotent: the schema adds its header and its 422.
                assert {"400", "404", "409", "413", "415", "422"} <= set(responses), (method, path)
                names = [p["name"] for p in operation.get("parameters", [])]
                assert "Idempotency-Key" in names, (method, path)
            assert operation.get("security"), (method, path)


def test_docs_ui_is_served_without_a_cdn(db):
    response = Caller(None).get("/api/docs/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "swagger-ui" in page
    assert "cdn.jsdelivr.net" not in page and "unpkg.com" not in page
