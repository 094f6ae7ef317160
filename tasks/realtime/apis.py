"""Realtime tickets and the client configuration (docs/realtime.md): what a browser or a
harness needs before it opens the realtime URL."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.auth import USER_AUTHENTICATION, IsOrgMember, UserAPIView
from accounts.credentials import HARNESS_KEY_PREFIX
from accounts.models import AccessToken
from api.auth import bearer_token
from api.fields import validated
from api.idempotency import idempotent
from api.public_url import public_origin, websocket_origin
from api.views import POST_PROBLEMS, body, problems
from tasks import services
from tasks.harnesses.auth import HarnessKeyAuthentication
from tasks.models import HarnessApp
from tasks.serializers.inputs import EmptyIn
from tasks.serializers.outputs import ConfigOut, TicketOut


class PersonOrHarnessApp(IsOrgMember):
    """A person of an org, or a harness app (its org is its own)."""

    def has_permission(self, request: Request, view: Any) -> bool:
        if isinstance(request.auth, HarnessApp):
            request.org = request.auth.org
            return True
        return super().has_permission(request, view)


class RealtimeTicketAPI(UserAPIView):
    # A ticket is a credential: ETHER_RATE_TICKET per user or harness key.
    throttle_scopes_by_method = {"POST": ("ticket",)}
    permission_classes = [PersonOrHarnessApp]
    # Both, for the schema's security; a request is read by one (get_authenticators).
    authentication_classes = [*USER_AUTHENTICATION, HarnessKeyAuthentication]

    def get_authenticators(self) -> list[Any]:
        """A harness key (``eth_app_…``) mints its app's ticket; anything else is read
        as a person's credential, as on every product route."""
        request = getattr(self, "request", None)
        try:
            bearer = bearer_token(request) if request is not None else None
        except AuthenticationFailed:
            bearer = "malformed"  # the person's authenticators answer it, as elsewhere
        if bearer is None:  # a session, or nothing (and the schema, which shows both)
            return [auth() for auth in self.authentication_classes]
        if bearer.startswith(HARNESS_KEY_PREFIX):
            return [HarnessKeyAuthentication()]
        return [auth() for auth in USER_AUTHENTICATION]

    @extend_schema(
        tags=["realtime"],
        summary="A single-use ticket for ?token= on the realtime URL (expires in 30 s)",
        request=EmptyIn,
        responses={201: TicketOut, **problems(*POST_PROBLEMS)},
    )
    @idempotent
    def post(self, request: Request) -> Response:
        validated(EmptyIn, body(request))
        if isinstance(request.auth, HarnessApp):
            issued = services.ticket_create(app=request.auth)
        else:
            # Minted with a token, the ticket's socket is that token's stream (ends on revoke).
            token = request.auth if isinstance(request.auth, AccessToken) else None
            issued = services.ticket_create(user=request.user, token=token)
        return Response(TicketOut(issued).data, status=201)


class ConfigAPI(APIView):
    """What a frontend needs to connect; public, it holds no secret."""

    authentication_classes: list = []
    permission_classes: list = []

    @extend_schema(tags=["realtime"], summary="Client configuration", responses={200: ConfigOut})
    def get(self, request: Request) -> Response:
        http_base = public_origin(request)
        ws_base = websocket_origin(request)
        realtime = {
            "prefer_websocket": True,
            "websocket_url": ws_base + "/api/realtime",
            "sse_url_template": http_base + "/api/tasks/{task_id}/events",
        }
        return Response(ConfigOut({"realtime": realtime}).data)
