"""ASGI entry point for daphne: HTTP through Django, WebSocket through Channels."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ether_site.settings")
django_asgi_app = get_asgi_application()

# Imported after Django is set up: consumers touch models.
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from tasks.consumers import RealtimeConsumer  # noqa: E402

websocket_urlpatterns = [path("api/realtime", RealtimeConsumer.as_asgi())]

application = ProtocolTypeRouter(
    {"http": django_asgi_app, "websocket": URLRouter(websocket_urlpatterns)}
)
