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
