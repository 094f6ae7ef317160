"""Harness routes of the context corpus (docs/contract.md §3): slices, documents, tools, skills."""

from __future__ import annotations

import hashlib

from django.http import HttpResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from api.fields import validated
from api.negotiation import AnyAcceptNegotiation
from api.views import problems
from corpus.packing import Pack, context_pack
from corpus.selectors import (
    document_in_scope,
    scope_slices,
    skill_domains,
    skills_for_org,
    tools_for_org,
)
from corpus.serializers import (
    DocBodyOut,
    PackDocOut,
    PackOmittedOut,
    SkillOut,
    SliceOut,
    ToolOut,
)
from tasks import selectors
from tasks.apis import HarnessAPIView
from tasks.context import task_scope
from tasks.models import Task
from tasks.serializers.queries import ContextDocQuery, ContextPackQuery, ContextQuery, SkillsQuery


class ContextOut(serializers.Serializer):
    task_id = serializers.CharField()
    slices = SliceOut(many=True)


class ToolsOut(serializers.Serializer):
    tools = ToolOut(many=True)


class SkillsOut(serializers.Serializer):
    skills = SkillOut(many=True)
    domains = serializers.ListField(
        child=serializers.CharField(), help_text="Every domain the org's skills have"
    )


class PackOut(serializers.Serializer):
    task_id = serializers.CharField()
    budget_bytes = serializers.IntegerField()
    used_bytes = serializers.IntegerField()
    docs = PackDocOut(many=True)
    omitted = PackOmittedOut(many=True)


def if_none_match(request: Request, etag: str) -> bool:
    """Whether If-None-Match names ``etag`` (or is ``*``). RFC 9110 compares weakly, so
    W/"x" matches "x"."""
    raw = request.headers.get("If-None-Match", "")
    sent = {t.strip().removeprefix("W/") for t in raw.split(",")}
    return etag in sent or "*" in sent


def not_modified(etag: str) -> HttpResponse:
    response = HttpResponse(status=304)
    response["ETag"] = etag
    return response


def pack_etag(pack: Pack) -> str:
    """Names one answer of the pack route: the same documents (id, version, hash, changed
    flag), the same omissions and budget give the same tag, so a harness revalidates the
    whole pack with If-None-Match."""
    parts = [str(pack.budget_bytes)]
    parts += [
        f"{d.document.public_id}:{d.document.version}:{d.document.sha256}:{d.changed_since_last_run}"
        for d in pack.docs
    ]
    parts += [f"-{o.document.public_id}:{o.document.size}:{o.reason}" for o in pack.omitted]
    return '"pack-' + hashlib.sha256("\n".join(parts).encode()).hexdigest()[:32] + '"'


class ContextTaskMixin(HarnessAPIView):
    def scoped_task(self, request: Request) -> Task:
        task_id = validated(ContextDocQuery, request.query_params)["task_id"]
        return selectors.task_get(org=self.app(request).org, task_id=task_id)


class ContextAPI(ContextTaskMixin):
    @extend_schema(
        tags=["context"],
        summary="The task's context documents, slice by slice",
        parameters=[ContextQuery],
        responses={200: ContextOut, **problems(400, 404)},
    )
    def get(self, request: Request) -> Response:
        task = self.scoped_task(request)  # task_id first: an unknown task is 404
        names = validated(ContextQuery, request.query_params)["slices"]
        slices = scope_slices(task_scope(task), names)
        return Response(ContextOut({"task_id": task.public_id, "slices": slices}).data)


class ContextPackAPI(ContextTaskMixin):
    @extend_schema(
        tags=["context"],
        summary="The task's context in one call, within a byte budget",
        description=(
            "Whole documents in priority order (task, working memory, newest working notes, "
            "repo, project, profile) while they fit in budget_bytes (UTF-8 bytes of bodies); "
            "the rest in omitted with a reason. etag is the document route's ETag. "
            "changed_since_last_run: written after the task's previous run began. The "
            "answer has an ETag; If-None-Match with it answers 304 while nothing changed."
        ),
        parameters=[ContextPackQuery],
        responses={
            200: PackOut,
            304: OpenApiResponse(description="Not modified"),
            **problems(400, 404),
        },
    )
    def get(self, request: Request) -> Response:
        task = self.scoped_task(request)
        budget = validated(ContextPackQuery, request.query_params)["budget_bytes"]
        pack = context_pack(
            task_scope(task),
            budget_bytes=budget,
            last_run_at=selectors.previous_run_started_at(task),
        )
        etag = pack_etag(pack)
        if if_none_match(request, etag):
            return not_modified(etag)
        body = {
            "task_id": task.public_id,
            "budget_bytes": pack.budget_bytes,
            "used_bytes": pack.used_bytes,
            "docs": pack.docs,
            "omitted": pack.omitted,
        }
        return Response(PackOut(body).data, headers={"ETag": etag})


class ContextDocAPI(ContextTaskMixin):
    # Markdown unless JSON is asked for, whatever else Accept lists (no 406).
    content_negotiation_class = AnyAcceptNegotiation

    @extend_schema(
        tags=["context"],
        summary="One document's markdown (or JSON with Accept: application/json)",
        description=(
            "doc_id is an id or a path (task/task_….md). Answers text/markdown with an "
            "ETag; If-None-Match with the current ETag answers 304."
        ),
        parameters=[ContextDocQuery],
        responses={
            200: DocBodyOut,
            304: OpenApiResponse(description="Not modified"),
            **problems(400, 404),
        },
    )
    def get(self, request: Request, doc_id: str) -> HttpResponse | Response:
        task = self.scoped_task(request)
        document = document_in_scope(task_scope(task), doc_id)
        etag = document.etag
        if if_none_match(request, etag):
            return not_modified(etag)
        if "application/json" in request.headers.get("Accept", ""):
            return Response(DocBodyOut(document).data, headers={"ETag": etag})
        response = HttpResponse(document.body, content_type="text/markdown; charset=utf-8")
        response["ETag"] = etag
        return response


class ToolsAPI(HarnessAPIView):
    @extend_schema(tags=["context"], summary="The org's tool manifest", responses={200: ToolsOut})
    def get(self, request: Request) -> Response:
        return Response(ToolsOut({"tools": tools_for_org(self.app(request).org)}).data)


class SkillsAPI(HarnessAPIView):
    @extend_schema(
        tags=["context"],
        summary="The org's skills, optionally of one domain",
        parameters=[SkillsQuery],
        responses={200: SkillsOut},
    )
    def get(self, request: Request) -> Response:
        domain = validated(SkillsQuery, request.query_params).get("domain")
        org = self.app(request).org
        return Response(
            SkillsOut({"skills": skills_for_org(org, domain), "domains": skill_domains(org)}).data
        )
