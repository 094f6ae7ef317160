"""The routes around ``/v1/harnesses`` that help author definitions, as Everruns serves
them (docs/contract.md §4, Everruns compatibility): the examples gallery and its import,
the name check, the caller's policies, the preview of a draft and a definition's stats."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.auth import EverrunsAPIView
from api.errors import NotFound, ValidationFailed
from api.fields import StrictCharField, validated
from api.idempotency import idempotent
from api.public_url import public_origin
from api.query import QueryCharField, QuerySerializer
from api.views import POST_PROBLEMS, body, problems
from tasks.harnesses import selectors as hs
from tasks.harnesses import serializers as s
from tasks.harnesses import services
from tasks.harnesses.apis import out
from tasks.harnesses.gallery import example_get, examples
from tasks.harnesses.preview import harness_preview
from tasks.harnesses.stats import harness_stats
from tasks.models import HarnessApp

EVERYONE = "Any member of the org."


# --- shapes --------------------------------------------------------------------------------
class ExampleOut(serializers.Serializer):
    name = serializers.CharField()
    display_name = serializers.CharField()
    description = serializers.CharField()
    tags = serializers.ListField(child=serializers.CharField())
    capabilities = serializers.ListField(child=serializers.DictField())
    parent_name = serializers.CharField(allow_null=True)
    dev_only = serializers.BooleanField()
    system_prompt = serializers.CharField(help_text="Beyond Everruns: the prompt an import sets.")


class CheckNameQuery(QuerySerializer):
    name = QueryCharField(required=True, max_length=200, help_text="The harness name to check.")
    exclude_id = QueryCharField(
        required=False,
        max_length=200,
        help_text="A harness id whose own name counts as available (edit forms).",
    )


class CheckNameOut(serializers.Serializer):
    available = serializers.BooleanField()
    reason = serializers.CharField(required=False, help_text="Beyond Everruns: why not.")


class HarnessConfigOut(serializers.Serializer):
    policies = serializers.DictField(child=serializers.BooleanField())


class ImportQuery(QuerySerializer):
    from_example = QueryCharField(required=True, max_length=200)

    def to_internal_value(self, data: object) -> object:
        # The parameter is spelled with a hyphen, which no Python name can hold.
        if hasattr(data, "get"):
            data = {"from_example": data.get("from-example")}  # type: ignore[union-attr]
        return super().to_internal_value(data)


class PreviewIn(s.HarnessIn):
    """Everruns' draft (``system_prompt``, ``capabilities``, ``mcpServers``,
    ``parent_harness_id``) or any field of a definition, none required; and, beyond
    Everruns, ``harness_id`` (the draft changes that definition) and ``app_id`` (answer
    that app's bundle ``harness``)."""

    name = StrictCharField(max_length=200, required=False)
    harness_id = StrictCharField(max_length=200, required=False)
    app_id = StrictCharField(max_length=64, required=False)


class DraftHarnessOut(s.HarnessOut):
    """A definition as the bundle carries it; a new draft's links are null (no id yet)."""

    self_url = serializers.CharField(allow_null=True)
    view_url = serializers.CharField(allow_null=True)
    ui_link = serializers.CharField(allow_null=True)


class PreviewOut(serializers.Serializer):
    system_prompt = serializers.CharField()
    tools = serializers.ListField(child=serializers.DictField())
    harness = DraftHarnessOut(help_text="Beyond Everruns: the draft as a claim bundle carries it.")


class StatsOut(serializers.Serializer):
    session_count = serializers.IntegerField()
    active_session_count = serializers.IntegerField()
    idle_session_count = serializers.IntegerField()
    started_session_count = serializers.IntegerField()
    waiting_for_tool_results_session_count = serializers.IntegerField()
    execution_count = serializers.IntegerField()
    total_session_duration_ms = serializers.IntegerField()
    avg_session_duration_ms = serializers.IntegerField(allow_null=True)
    first_session_at = serializers.DateTimeField(allow_null=True)
    last_session_at = serializers.DateTimeField(allow_null=True)
    last_execution_at = serializers.DateTimeField(allow_null=True)
    total_input_tokens = serializers.IntegerField()
    total_output_tokens = serializers.IntegerField()
    total_cache_read_tokens = serializers.IntegerField()
    total_cache_creation_tokens = serializers.IntegerField()
    total_actual_cost_usd = serializers.FloatField()
    total_estimated_cost_usd = serializers.FloatField()
    total_cost_usd = serializers.FloatField()
    app_count = serializers.IntegerField()
    outcomes = serializers.DictField(child=serializers.IntegerField())


# --- routes --------------------------------------------------------------------------------
class HarnessExamplesAPI(EverrunsAPIView):
    @extend_schema(
        tags=["harness-examples"],
        summary="The examples gallery: starting definitions to import",
        operation_id="harness_examples_list",
        responses={200: ExampleOut(many=True), **problems(403)},
    )
    def get(self, request: Request) -> Response:
        return Response(
            [
                {
                    "name": e.name,
                    "display_name": e.display_name,
                    "description": e.description,
                    "tags": e.tags,
                    "capabilities": e.capabilities,
                    "parent_name": e.parent_name,
                    "dev_only": e.dev_only,
                    "system_prompt": e.definition.get("system_prompt", ""),
                }
                for e in examples()
            ]
        )


class HarnessCheckNameAPI(EverrunsAPIView):
    @extend_schema(
        tags=["harnesses"],
        summary="Whether a name is free for a harness definition",
        description="Malformed, reserved and taken names are not available (`reason` says why).",
        parameters=[CheckNameQuery],
        responses={200: CheckNameOut, **problems(400, 403)},
    )
    def get(self, request: Request) -> Response:
        query = validated(CheckNameQuery, request.query_params)
        available, reason = hs.name_available(
            org=self.org(request), name=query["name"], exclude_id=query.get("exclude_id")
        )
        return Response(
            {"available": True} if available else {"available": False, "reason": reason}
        )


class HarnessConfigAPI(EverrunsAPIView):
    @extend_schema(
        tags=["harnesses"],
        summary="Which harness policies the caller satisfies",
        description=(
            "Every member of an org may create, update, copy, import, archive and delete its "
            "definitions (built-in ones are read-only for everyone)."
        ),
        responses={200: HarnessConfigOut, **problems(403)},
    )
    def get(self, request: Request) -> Response:
        allowed = {"create", "update", "delete", "archive", "copy", "import", "preview"}
        return Response({"policies": dict.fromkeys(sorted(allowed), True)})


class HarnessImportAPI(EverrunsAPIView):
    @extend_schema(
        tags=["harnesses"],
        summary="Import a gallery example as a definition of the org",
        description=(
            "Named as the example, with a random suffix if the name is taken; its parent is "
            "the example's `parent_name` as the org resolves it (`generic`)."
        ),
        parameters=[
            OpenApiParameter(
                "from-example",
                str,
                OpenApiParameter.QUERY,
                required=True,
                description="The example's name (GET /v1/harness-examples).",
            ),
        ],
        request=None,
        responses={201: s.HarnessOut, **problems(403, *POST_PROBLEMS)},
    )
    @idempotent
    def post(self, request: Request) -> Response:
        org = self.org(request)
        name = validated(ImportQuery, request.query_params)["from_example"]
        example = example_get(name)
        if example is None:
            raise NotFound(f"No harness example {name!r}.")
        parent = None
        if example.parent_name:
            try:
                parent = hs.harness_get(org=org, ref=example.parent_name)
            except NotFound:
                raise ValidationFailed(
                    {"from-example": [f"Its parent {example.parent_name!r} is not in this org."]}
                ) from None
        harness = services.harness_import(org=org, example=example, parent=parent)
        return Response(out(request, harness), status=201)


class HarnessPreviewAPI(EverrunsAPIView):
    @extend_schema(
        tags=["harnesses"],
        summary="A draft definition resolved, without saving it",
        description=(
            "`system_prompt` (stacked through the parents) and `tools` (the org's tool "
            "manifest, as `GET /api/harness/tools` serves it) as Everruns answers; beyond "
            "Everruns, `harness`: the draft as a claim bundle carries it. With `harness_id` "
            "the draft changes that definition (PATCH rules); with `app_id`, `harness` is "
            "exactly that app's bundle `harness` (docs/harnesses.md)."
        ),
        request=PreviewIn,
        responses={200: PreviewOut, **problems(403, *POST_PROBLEMS)},
    )
    @idempotent
    def post(self, request: Request) -> Response:
        org = self.org(request)
        data = validated(PreviewIn, body(request))
        target = app = None
        if "harness_id" in data:
            target = hs.harness_get(org=org, ref=data.pop("harness_id"))
        if "app_id" in data:
            app_id = data.pop("app_id")
            app = (
                HarnessApp.objects.select_related("org", "harness")
                .filter(org=org, app_id=app_id)
                .first()
            )
            if app is None:
                raise NotFound(f"No harness app {app_id!r} in this org.")
        preview = harness_preview(
            org=org, data=data, target=target, app=app, base_url=public_origin(request)
        )
        return Response(preview)


class HarnessStatsAPI(EverrunsAPIView):
    @extend_schema(
        tags=["harnesses"],
        summary="What ran under a definition: runs, apps and outcomes",
        description=(
            "Everruns' sessions are Ether's runs of the org's tasks under this definition. "
            "Ether sees no tokens or costs: those totals are 0. `outcomes` counts runs by "
            "how they ended (results `submitted`, `blocked`, `no_changes`; runs `expired`, "
            "`released`) and those still `live`."
        ),
        responses={200: StatsOut, **problems(403, 404)},
    )
    def get(self, request: Request, harness_id: str) -> Response:
        org = self.org(request)
        harness = hs.harness_get(org=org, ref=harness_id)
        return Response(harness_stats(org=org, harness=harness))
