from __future__ import annotations

from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "api"
    verbose_name = "API plumbing"

    def ready(self) -> None:
        # Registers the OpenAPI extensions of the authentication classes.
        from api import schema  # noqa: F401
        from api.retention import register_api_purges

        register_api_purges()
