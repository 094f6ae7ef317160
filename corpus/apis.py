"""The document API for scripts and the admin's own pages (docs/contract.md §2)."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from django.contrib.auth import get_user_model
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.auth import UserAPIView
from accounts.models import Membership, Project, Repository
from api.errors import ValidationFailed
from api.fields import validated
from api.idempotency import idempotent
from api.pagination import CursorPaged
from api.views import POST_PROBLEMS, body, problems
from corpus import selectors
from corpus import serializers as s
from corpus.models import DocumentKind, DocumentVersion
from corpus.rendering import Renders
from corpus.services import document_create, document_save

IF_MATCH = OpenApiParameter(
    "If-Match",
    str,
    OpenApiParameter.HEADER,
    required=False,
    description="The ETag you loaded; a newer save makes this 412 instead of losing it.",
)


def _scope(org: Any, user: Any, data: dict[str, Any]) -> dict[str, Any]:
    """Resolves the slug/name/username of the scope the new document belongs to."""
    kind = data["kind"]
    errors: dict[str, list[str]] = {}
    scope: dict[str, Any] = {}
    if kind == DocumentKind.PROFILE:
        username = data.get("owner") or user.get_username()
        owner = get_user_model().objects.filter(username=username).first()
        if owner is None or not Membership.objects.filter(user=owner, org=org).exists():
            errors["owner"] = [f"No member {username!r} in this org."]
        scope["owner"] = owner
    elif kind == DocumentKind.PROJECT:
        project = Project.objects.filter(org=org, slug=data.get("project", "")).first()
        if project is None:
            errors["project"] = ["Required: the slug of a project of this org."]
        scope["project"] = project
    else:
        repo = Repository.objects.filter(org=org, full_name=data.get("repo", "")).first()
        if repo is None:
            errors["repo"] = ["Required: the full_name of a repository of this org."]
        scope["repo"] = repo
    if errors:
        raise ValidationFailed(errors)
    return scope


class DocumentListAPI(CursorPaged, UserAPIView):
    cursor_ordering, cursor_kind = "public_id", str

    @cached_property
    def renders(self) -> Renders:
        return Renders()  # one view instance per request: the request's renders

    def prepare_idempotent(self, request: Request) -> None:
        """With an Idempotency-Key the handler runs inside the key's transaction (on
        SQLite the write lock, from its first statement): render the body first."""
        data = request.data
        self.renders.warm(data.get("body") if isinstance(data, dict) else None)

    @extend_schema(
        tags=["documents"],
        summary="The org's documents",
        operation_id="context_docs_list",
        parameters=[s.DocumentListQuery],
        responses={200: s.DocumentRowOut(many=True), **problems(400)},
    )
    def get(self, request: Request) -> Response:
        query = validated(s.DocumentListQuery, request.query_params)
        queryset = selectors.documents_for_org(
            org=self.org(request),
            kind=query.get("kind"),
            project=query.get("project"),
            repo=query.get("repo"),
        )
        rows = self.paginate_queryset(queryset)
        return self.get_paginated_response(s.DocumentRowOut(rows, many=True).data)

    @extend_schema(
        tags=["documents"],
        summary="Create the profile, project or repository document of a scope",
        request=s.DocumentCreateIn,
        responses={201: s.DocumentOut, **problems(*POST_PROBLEMS)},
    )
    @idempotent
    def post(self, request: Request) -> Response:
        data = validated(s.DocumentCreateIn, body(request))
        org = self.org(request)
        # Before the service's transaction; 413 past ETHER_MAX_RENDER_BYTES, nothing stored.
        self.renders.render(data["body"])
        document = document_create(
            org=org,
            kind=data["kind"],
            body=data["body"],
            title=data.get("title", ""),
            user=request.user,
            renders=self.renders,
            **_scope(org, request.user, data),
        )
        return Response(s.DocumentOut(document).data, status=201, headers={"ETag": document.etag})


class DocumentDetailAPI(UserAPIView):
    @extend_schema(
        tags=["documents"],
        summary="One document, with its sanitized HTML rendering",
        responses={200: s.DocumentOut, **problems(404)},
    )
    def get(self, request: Request, doc_id: str) -> Response:
        document = selectors.document_get(org=self.org(request), doc_id=doc_id)
        return Response(s.DocumentOut(document).data, headers={"ETag": document.etag})

    @extend_schema(
        tags=["documents"],
        summary="Store a new version (when the body or title changed)",
        request=s.DocumentUpdateIn,
        parameters=[IF_MATCH],
        responses={200: s.DocumentOut, **problems(404, 412)},
    )
    def put(self, request: Request, doc_id: str) -> Response:
        document = selectors.document_get(org=self.org(request), doc_id=doc_id)
        data = validated(s.DocumentUpdateIn, body(request))
        renders = Renders()
        # Before the service's transaction; 413 past ETHER_MAX_RENDER_BYTES, nothing stored.
        renders.render(data["body"])
        saved = document_save(
            document=document,
            body=data["body"],
            title=data.get("title"),
            user=request.user,
            if_match=request.headers.get("If-Match"),
            renders=renders,
        )
        return Response(s.DocumentOut(saved).data, headers={"ETag": saved.etag})


class DocumentVersionsAPI(CursorPaged, UserAPIView):
    cursor_ordering = "version"

    @extend_schema(
        tags=["documents"],
        summary="The document's versions, oldest first",
        responses={200: s.VersionOut(many=True), **problems(400, 404)},
    )
    def get(self, request: Request, doc_id: str) -> Response:
        document = selectors.document_get(org=self.org(request), doc_id=doc_id)
        queryset = DocumentVersion.objects.select_related("created_by").filter(document=document)
        rows = self.paginate_queryset(queryset)
        return self.get_paginated_response(s.VersionOut(rows, many=True).data)
