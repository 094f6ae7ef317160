"""Content negotiation for routes whose body is not JSON (markdown, event streams)."""

from __future__ import annotations

from typing import Any

from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.request import Request


class AnyAcceptNegotiation(DefaultContentNegotiation):
    """Never refuses with 406: the view picks its own body (markdown, an event stream),
    and JSON renders whatever errors it raises, whatever the Accept header lists."""

    def select_renderer(
        self, request: Request, renderers: list[Any], format_suffix: str | None = None
    ) -> tuple[Any, str]:
        return renderers[0], renderers[0].media_type
