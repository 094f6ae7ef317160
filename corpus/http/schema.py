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
