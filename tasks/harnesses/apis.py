"""``/v1/harnesses``: harness definitions (docs/contract.md §4), and which definition each harness
app claims with (``/api/harness-apps``). User token or session; everything is scoped
to the caller's org."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.auth import EverrunsAPIView, UserAPIView
from api.errors import ValidationFailed
from api.fields import StrictCharField, StrictSerializer, validated
from api.idempotency import idempotent
from api.pagination import CursorPaged
from api.public_url import public_origin
from api.views import POST_PROBLEMS, body, problems
from tasks.harnesses import selectors as hs
from tasks.harnesses import serializers as s
from tasks.harnesses import services
from tasks.models import HarnessApp
from tasks.webhooks.apis import WebhookHealthOut, WebhookUrlOut, org_app
from tasks.webhooks.services import webhook_url_set

# `?limit=` or `?cursor=` asks for pages (docs/contract.md §0); without them, one list.
PAGE_PARAMS = {"limit", "cursor"}
NO_MORE = {"next_cursor": None}
ID_OR_NAME = "A harness id (harness_…), an addressable name, or `default`."


def out(request: Request, harness: Any, *, resolved: bool = False) -> dict[str, Any]:
    counted = hs.counted(harness, request.org)
    return s.harness_out(counted, base_url=public_origin(request), resolved=resolved)


class HarnessListAPI(CursorPaged, EverrunsAPIView):
    cursor_ordering, cursor_kind = "public_id", str

    @extend_schema(
        tags=["harnesses"],
        summary="List harness definitions (the org's and the built-in ones)",
        description=(
            "Every match in one `data` list, as Everruns answers; with `limit` or `cursor`, "
            "one page of at most `limit` (default 50) and its `next_cursor`."
        ),
        operation_id="harnesses_list",
        parameters=[s.HarnessListQuery],
        responses={200: s.HarnessOut(many=True), **problems(400, 403)},
    )
    def get(self, request: Request) -> Response:
        query = validated(s.HarnessListQuery, request.query_params)
        rows = hs.harness_list(
            org=self.org(request),
            search=query["search"],
            include_archived=query["include_archived"],
        )
        context = {"base_url": public_origin(request)}
        if not PAGE_PARAMS & set(request.query_params):
            # Everruns lists are not paged, and its clients read only `data`: every match.
            views = [hs.harness_view(h) for h in rows.order_by(self.cursor_ordering)]
            return Response(
                {"data": s.HarnessOut(views, many=True, context=context).data} | NO_MORE
            )
        views = [hs.harness_view(h) for h in self.paginate_queryset(rows)]
        return self.get_paginated_response(s.HarnessOut(views, many=True, context=context).data)

    @extend_schema(
        tags=["harnesses"],
        summary="Create a harness definition",
        request=s.HarnessIn,
        responses={201: s.HarnessOut, **problems(403, *POST_PROBLEMS)},
    )
    @idempotent
    def post(self, request: Request) -> Response:
        data = validated(s.HarnessIn, body(request))
        harness = services.harness_create(org=self.org(request), data=data)
        return Response(out(request, harness), status=201)


class HarnessDetailAPI(EverrunsAPIView):
    @extend_schema(
        tags=["harnesses"],
        summary="One harness definition, by id or name",
        description=ID_OR_NAME,
        parameters=[s.HarnessDetailQuery],
        responses={200: s.HarnessOut, **problems(400, 403, 404)},
    )
    def get(self, request: Request, harness_id: str) -> Response:
        harness = hs.harness_get(org=self.org(request), ref=harness_id)
        resolved = validated(s.HarnessDetailQuery, request.query_params)["resolved"]
        return Response(out(request, harness, resolved=resolved))

    @extend_schema(
        tags=["harnesses"],
        summary="Change a harness definition (any subset of its fields)",
        description=ID_OR_NAME + " Built-in definitions are read-only (403): copy them.",
        request=s.HarnessIn(partial=True),
        responses={200: s.HarnessOut, **problems(403, 404, 409)},
    )
    def patch(self, request: Request, harness_id: str) -> Response:
        harness = hs.harness_get(org=self.org(request), ref=harness_id)
        serializer = s.HarnessIn(data=body(request), partial=True)
        serializer.is_valid(raise_exception=True)
        harness = services.harness_update(
            org=self.org(request), harness=harness, data=dict(serializer.validated_data)
        )
        return Response(out(request, harness))

    @extend_schema(
        tags=["harnesses"],
        summary="Archive a harness definition; a second DELETE deletes it",
        description=ID_OR_NAME + " Answers 204 with no body, as Everruns does.",
        responses={204: None, **problems(400, 403, 404, 409)},
    )
    def delete(self, request: Request, harness_id: str) -> Response:
        org = self.org(request)
        if harness_id == "default":
            raise ValidationFailed({"harness_id": ["Name the definition to delete, not default."]})
        harness = hs.harness_get(org=org, ref=harness_id)
        services.harness_delete(org=org, harness=harness)
        return Response(status=204)


class HarnessCopyAPI(EverrunsAPIView):
    @extend_schema(
        tags=["harnesses"],
        summary="Copy a harness definition (built-in ones too) into an editable one",
        description=ID_OR_NAME + " The copy is named `{name}-copy` unless `name` is given.",
        request=s.CopyIn,
        responses={201: s.HarnessOut, **problems(403, *POST_PROBLEMS)},
    )
    @idempotent
    def post(self, request: Request, harness_id: str) -> Response:
        org = self.org(request)
        source = hs.harness_get(org=org, ref=harness_id)
        data = validated(s.CopyIn, body(request))
        copy = services.harness_copy(org=org, source=source, data=data)
        return Response(out(request, copy), status=201)


# --- which definition each app claims with -----------------------------------------------
class HarnessAppIn(StrictSerializer):
    harness = StrictCharField(allow_null=True, max_length=200, required=False)
    webhook_url = StrictCharField(
        allow_null=True,
        allow_blank=True,
        max_length=2000,
        required=False,
        help_text="http(s) only; loopback and private addresses are refused unless "
        "ETHER_WEBHOOK_ALLOW_PRIVATE=1. Null or empty removes it.",
    )


class HarnessAppOut(serializers.Serializer):
    app_id = serializers.CharField()
    name = serializers.CharField()
    # No definition: the dotted source fails on None and allow_null renders null.
    harness_id = serializers.CharField(source="harness.public_id", allow_null=True)
    harness_name = serializers.CharField(source="harness.name", allow_null=True)
    revoked = serializers.BooleanField(source="is_revoked")
    webhook_url = WebhookUrlOut(source="*", allow_null=True)
    webhook = WebhookHealthOut(source="*")


class HarnessAppListAPI(CursorPaged, UserAPIView):
    cursor_ordering, cursor_kind = "app_id", str

    @extend_schema(
        tags=["harnesses"],
        summary="The org's harness apps and their definitions",
        description="Paged like every list, in app_id order.",
        responses={200: HarnessAppOut(many=True), **problems(400)},
    )
    def get(self, request: Request) -> Response:
        apps = HarnessApp.objects.filter(org=self.org(request)).select_related("harness", "webhook")
        page = self.paginate_queryset(apps)
        return self.get_paginated_response(HarnessAppOut(page, many=True).data)


class HarnessAppDetailAPI(UserAPIView):
    @extend_schema(
        tags=["harnesses"],
        summary="Change a harness app: its definition (id or name, null for none) and "
        "its webhook URL",
        request=HarnessAppIn,
        responses={200: HarnessAppOut, **problems(400, 404)},
    )
    def patch(self, request: Request, app_id: str) -> Response:
        app = org_app(self.org(request), app_id)
        data = validated(HarnessAppIn, body(request))
        # Both checked before either is stored, so a refused URL changes nothing.
        if "harness" in data:
            services.attachable_check(app.org, data["harness"])
        if "webhook_url" in data:
            webhook_url_set(app=app, url=data["webhook_url"])
        if "harness" in data:
            services.harness_app_attach(app=app, ref=data["harness"])
        return Response(HarnessAppOut(org_app(self.org(request), app_id)).data)
