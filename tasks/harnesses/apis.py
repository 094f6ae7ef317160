"""``/v1/harnesses``: harness definitions (docs/contract.md §4), and which definition each harness
app claims with (``/api/harness-apps``). User token or session; everything is scoped
to the caller's org."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.auth import UserAPIView
from api.errors import NotFound, ValidationFailed
from api.fields import StrictCharField, StrictSerializer, validated
from api.idempotency import idempotent
from api.pagination import CursorPaged
from api.views import POST_PROBLEMS, base_url, body, problems
from tasks.harnesses import selectors as hs
from tasks.harnesses import serializers as s
from tasks.harnesses import services
from tasks.models import HarnessApp

ID_OR_NAME = "A harness id (harness_…), an addressable name, or `default`."


def out(request: Request, harness: Any, *, resolved: bool = False) -> dict[str, Any]:
    org = request.org
    return hs.harness_body(hs.counted(harness, org), base_url=base_url(request), resolved=resolved)


class HarnessListAPI(CursorPaged, UserAPIView):
    cursor_ordering, cursor_kind = "public_id", str

    @extend_schema(
        tags=["harnesses"],
        summary="List harness definitions (the org's and the built-in ones)",
        operation_id="harnesses_list",
        parameters=[s.HarnessListQuery],
        responses={200: s.HarnessOut(many=True), **problems(400)},
    )
    def get(self, request: Request) -> Response:
        query = validated(s.HarnessListQuery, request.query_params)
        rows = hs.harness_list(
            org=self.org(request),
            search=query["search"],
            include_archived=query["include_archived"],
        )
        url = base_url(request)
        page = self.paginate_queryset(rows)
        return self.get_paginated_response([hs.harness_body(h, base_url=url) for h in page])

    @extend_schema(
        tags=["harnesses"],
        summary="Create a harness definition",
        request=s.HarnessIn,
        responses={201: s.HarnessOut, **problems(*POST_PROBLEMS)},
    )
    @idempotent
    def post(self, request: Request) -> Response:
        data = validated(s.HarnessIn, body(request))
        harness = services.harness_create(org=self.org(request), data=data)
        return Response(out(request, harness), status=201)


class HarnessDetailAPI(UserAPIView):
    @extend_schema(
        tags=["harnesses"],
        summary="One harness definition, by id or name",
        description=ID_OR_NAME,
        parameters=[s.HarnessDetailQuery],
        responses={200: s.HarnessOut, **problems(400, 404)},
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
        description=ID_OR_NAME,
        responses={200: s.HarnessOut, **problems(400, 403, 404, 409)},
    )
    def delete(self, request: Request, harness_id: str) -> Response:
        org = self.org(request)
        if harness_id == "default":
            raise ValidationFailed({"harness_id": ["Name the definition to delete, not default."]})
        harness = hs.harness_get(org=org, ref=harness_id)
        harness = services.harness_delete(org=org, harness=harness)
        return Response(out(request, harness))


class HarnessCopyAPI(UserAPIView):
    @extend_schema(
        tags=["harnesses"],
        summary="Copy a harness definition (built-in ones too) into an editable one",
        description=ID_OR_NAME + " The copy is named `{name}-copy` unless `name` is given.",
        request=s.CopyIn,
        responses={201: s.HarnessOut, **problems(*POST_PROBLEMS)},
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
    harness = StrictCharField(allow_null=True, max_length=200)


class HarnessAppOut(serializers.Serializer):
    app_id = serializers.CharField()
    name = serializers.CharField()
    # No definition: the dotted source fails on None and allow_null renders null.
    harness_id = serializers.CharField(source="harness.public_id", allow_null=True)
    harness_name = serializers.CharField(source="harness.name", allow_null=True)
    revoked = serializers.BooleanField(source="is_revoked")


class HarnessAppListAPI(CursorPaged, UserAPIView):
    cursor_ordering, cursor_kind = "app_id", str

    @extend_schema(
        tags=["harnesses"],
        summary="The org's harness apps and their definitions",
        description="Paged like every list, in app_id order.",
        responses={200: HarnessAppOut(many=True), **problems(400)},
    )
    def get(self, request: Request) -> Response:
        apps = HarnessApp.objects.filter(org=self.org(request)).select_related("harness")
        page = self.paginate_queryset(apps)
        return self.get_paginated_response(HarnessAppOut(page, many=True).data)


class HarnessAppDetailAPI(UserAPIView):
    @extend_schema(
        tags=["harnesses"],
        summary="Point a harness app at a definition (id or name), or null for none",
        request=HarnessAppIn,
        responses={200: HarnessAppOut, **problems(404)},
    )
    def patch(self, request: Request, app_id: str) -> Response:
        app = (
            HarnessApp.objects.select_related("org", "harness")
            .filter(org=self.org(request), app_id=app_id)
            .first()
        )
        if app is None:
            raise NotFound(f"No harness app {app_id!r} in this org.")
        data = validated(HarnessAppIn, body(request))
        app = services.harness_app_attach(app=app, ref=data["harness"])
        return Response(HarnessAppOut(app).data)
