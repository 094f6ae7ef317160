"""``/healthz``, ``/readyz`` and ``/metrics``: what a load balancer, systemd and
Prometheus ask a server process. Unauthenticated (``/metrics`` takes an optional bearer
token), cheap, and logged at DEBUG only (ether_site.observability).

- ``/healthz``: the process answers HTTP. Nothing else is touched.
- ``/readyz``: the database answers ``SELECT 1``, the channel layer answers a ping, and
  every background worker has beaten recently (``api.heartbeat``). 200 when all hold,
  else 503 naming each check that failed. Each check is bounded in time.
- ``/metrics``: Prometheus text format, every process's values added up in multiprocess
  mode (``api.metrics``).
"""

from __future__ import annotations

import asyncio
import hmac
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection
from django.http import HttpResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from prometheus_client import CONTENT_TYPE_LATEST
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api import metrics
from api.heartbeat import worker_states
from api.negotiation import AnyAcceptNegotiation
from api.problems import PROBLEM_CONTENT_TYPE, json_problem, problem_response
from api.views import ProblemSchema

LAYER_TIMEOUT_SECONDS = 2.0


class ReadyOut(serializers.Serializer):
    status = serializers.ChoiceField(choices=["ok"])
    failed = serializers.ListField(child=serializers.CharField())
    checks = serializers.DictField(child=serializers.CharField())
    workers = serializers.DictField(child=serializers.CharField())


class NotReadyProblem(ProblemSchema):
    """The 503: a problem document (``code: not_ready``) with the checks as members."""

    failed = serializers.ListField(child=serializers.CharField())
    checks = serializers.DictField(child=serializers.CharField())
    workers = serializers.DictField(child=serializers.CharField())


class ProbeView(APIView):
    authentication_classes: list = []
    permission_classes: list = []
    throttle_classes: list = []
    content_negotiation_class = AnyAcceptNegotiation


class HealthzAPI(ProbeView):
    @extend_schema(
        tags=["operating"],
        summary="Liveness: the process answers",
        auth=[],
        responses={200: inline_serializer("HealthOut", {"status": serializers.CharField()})},
    )
    def get(self, request: Request) -> Response:
        return Response({"status": "ok"})


def _check_database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # a pool timeout, a refused connection: a failed check, never a 500
        return f"failed: {type(exc).__name__}"
    return "ok"


async def _ping_layer() -> None:
    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError("no channel layer configured")
    ping = getattr(layer, "ping", None)
    if ping is not None:
        await asyncio.wait_for(ping(), LAYER_TIMEOUT_SECONDS)
        return
    # Any other layer: a message to a fresh channel of this process must come back.
    channel = await layer.new_channel()
    await layer.send(channel, {"type": "readyz.ping"})
    await asyncio.wait_for(layer.receive(channel), LAYER_TIMEOUT_SECONDS)


def _check_channel_layer() -> str:
    try:
        async_to_sync(_ping_layer)()
    except Exception as exc:  # any failure of the layer is a failed check, never a 500
        return f"failed: {type(exc).__name__}"
    return "ok"


class ReadyzAPI(ProbeView):
    @extend_schema(
        tags=["operating"],
        summary="Readiness: database, channel layer and background workers answer",
        auth=[],
        responses={
            200: ReadyOut,
            (503, PROBLEM_CONTENT_TYPE): OpenApiResponse(
                NotReadyProblem, description="At least one check failed: `failed` names them"
            ),
        },
    )
    def get(self, request: Request) -> Response:
        checks = {"database": _check_database(), "channel_layer": _check_channel_layer()}
        workers: dict[str, str] = {}
        if checks["database"] == "ok":
            try:
                workers = worker_states()
            except Exception as exc:
                checks["database"] = f"failed: {type(exc).__name__}"
        failed = [name for name, state in checks.items() if state != "ok"]
        failed += [f"worker:{name}" for name, state in workers.items() if state != "ok"]
        if failed:
            return problem_response(
                503,
                "not_ready",
                "Not ready",
                "Failed: " + ", ".join(failed) + ".",
                failed=failed,
                checks=checks,
                workers=workers,
            )
        return Response({"status": "ok", "failed": [], "checks": checks, "workers": workers})


class MetricsAPI(ProbeView):
    @extend_schema(
        tags=["operating"],
        summary="Prometheus metrics of every server process and worker",
        description="With `ETHER_METRICS_TOKEN` set, send `Authorization: Bearer <token>`.",
        auth=[],
        responses={
            (200, "text/plain"): OpenApiResponse(str, description="Prometheus text format"),
            401: OpenApiResponse(
                ProblemSchema, description="ETHER_METRICS_TOKEN is set and was not sent"
            ),
        },
    )
    def get(self, request: Request) -> Any:
        expected = settings.ETHER_METRICS_TOKEN
        if expected:
            sent = request.headers.get("Authorization", "")
            if not hmac.compare_digest(sent.encode(), f"Bearer {expected}".encode()):
                refusal = json_problem(
                    401, "not_authenticated", "Not authenticated", "Send the metrics token."
                )
                refusal["WWW-Authenticate"] = 'Bearer realm="metrics"'
                return refusal
        return HttpResponse(metrics.exposition(), content_type=CONTENT_TYPE_LATEST)
