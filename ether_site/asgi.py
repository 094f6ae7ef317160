"""ASGI entry point for daphne: HTTP through Django, WebSocket through Channels."""

from __future__ import annotations

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ether_site.settings")
# What get_asgi_application() does, with a handler whose own refusals (an undecodable
# request, before any middleware) are problem documents on API paths.
django.setup(set_prefix=False)

from api.admission import AdmissionASGI  # noqa: E402
from api.asgi import ProblemASGIHandler  # noqa: E402
from api.longpoll import LongPollASGI  # noqa: E402
from ether_site.fastlane import StepFastLane  # noqa: E402
from tasks.events import PublisherASGI  # noqa: E402

# Long polls wait in the event loop between looks, holding no thread or connection; each
# look is admitted on its own (api.admission: past capacity, a fast 503). Plain steps take
# the fast lane (ether_site.fastlane, bounded on its own); the rest go to Django.
django_asgi_app = PublisherASGI(
    LongPollASGI(StepFastLane(AdmissionASGI(ProblemASGIHandler())), routes=["harness-claim-next"])
)

# Imported after Django is set up: consumers touch models.
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from tasks.realtime.consumers import RealtimeConsumer  # noqa: E402

websocket_urlpatterns = [path("api/realtime", RealtimeConsumer.as_asgi())]

application = ProtocolTypeRouter(
    {"http": django_asgi_app, "websocket": URLRouter(websocket_urlpatterns)}
)
