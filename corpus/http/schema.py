"""OpenAPI descriptions of our authentication classes (drf-spectacular extensions)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class AccessTokenScheme(OpenApiAuthenticationExtension):
    target_class = "corpus.http.auth.AccessTokenAuthentication"
    name = "accessToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "Personal access token (eth_pat_…): manage.py create_access_token",
        }


class HarnessKeyScheme(OpenApiAuthenticationExtension):
    target_class = "tasks.auth.HarnessKeyAuthentication"
    name = "harnessKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "Harness app key (eth_app_…): manage.py create_harness_app",
        }


def document_rate_limits(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """Adds the 429 of corpus/http/ratelimit.py to the routes it limits: every harness
    route and the realtime ticket route (a POSTPROCESSING_HOOK)."""
    limited = [p for p in result.get("paths", {}) if p.startswith("/api/harness/")]
    limited.append("/api/realtime/tickets")
    for path in limited:
        for method, operation in result["paths"].get(path, {}).items():
            if path == "/api/realtime/tickets" and method != "post":
                continue
            operation.setdefault("responses", {})["429"] = {
                "description": "Rate limit reached (ETHER_RATE_*); see Retry-After",
                "headers": {"Retry-After": {"schema": {"type": "integer"}}},
                "content": {
                    "application/problem+json": {
                        "schema": {"$ref": "#/components/schemas/ProblemSchema"}
                    }
                },
            }
    return result


def problems_as_problem_json(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """Errors are served as ``application/problem+json`` (RFC 9457), but views describe
    them with ``ProblemSchema`` like any body, which drf-spectacular files under
    ``application/json``. Found by schemathesis: clients that validate the content type
    against the schema refused every error. Moves each such response to its real type."""
    problem_ref = "#/components/schemas/ProblemSchema"
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            if not isinstance(operation, dict):
                continue
            for response in operation.get("responses", {}).values():
                content = response.get("content", {})
                described = content.get("application/json", {}).get("schema", {})
                if described.get("$ref") == problem_ref:
                    content["application/problem+json"] = content.pop("application/json")
    return result
