"""The harness's routes on one task (docs/contract.md §3): the execution preview, claim,
heartbeat, steps and interrupt. Thin: parse, call one service, render. The result route
lives in ``delivery.apis``."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from api.errors import Forbidden
from api.fields import validated
from api.idempotency import idempotent
from api.views import POST_PROBLEMS, body, problems
from tasks import selectors, services
from tasks.apis import HarnessAPIView
from tasks.models import HarnessApp, Task
from tasks.serializers.harness import BundleOut, ClaimOut, HeartbeatOut, InterruptOut, StepOut
from tasks.serializers.inputs import ClaimIn, HeartbeatIn, InterruptIn, StepIn


def bundle_body(request: Request, *, task: Task, app: HarnessApp) -> dict[str, Any]:
    bundle = selectors.execution_bundle(task=task, app=app)
    return BundleOut(bundle, context={"request": request}).data


def claim_body(request: Request, claim: services.Claim) -> dict[str, Any]:
    bundle = selectors.execution_bundle(task=claim.task, app=claim.run.app)
    return ClaimOut({"run": claim.run, "bundle": bundle}, context={"request": request}).data


class ExecutionPreviewAPI(HarnessAPIView):
    @extend_schema(
        tags=["harness"],
        summary="Preview the execution bundle without claiming",
        responses={200: BundleOut, **problems(404)},
    )
    def get(self, request: Request, task_id: str) -> Response:
        task = self.task(request, task_id)
        services.lease_settle(task_pk=task.pk)
        task.refresh_from_db()
        return Response(bundle_body(request, task=task, app=self.app(request)))


class ClaimAPI(HarnessAPIView):
    # A claim mints a lease: ETHER_RATE_CLAIM on top of the harness limit.
    throttle_scopes_by_method = {"POST": ("claim",)}

    @extend_schema(
        tags=["harness"],
        summary="Claim the task's lease",
        description=(
            "Another app's live lease is 409 lease_held (with holder_app_id, lease_expires_at "
            "and Retry-After). The same app gets its own run back with a bumped lease_epoch. "
            "An expired lease is no lease. Paused: 409 task_paused; closed: 409 task_closed."
        ),
        request=ClaimIn,
        responses={200: ClaimOut, **problems(403, *POST_PROBLEMS)},
    )
    @idempotent
    def post(self, request: Request, task_id: str) -> Response:
        task = self.task(request, task_id)
        data = validated(ClaimIn, body(request))
        app = self.app(request)
        if data["app_id"] != app.app_id:
            raise Forbidden(
                f"app_id {data['app_id']!r} is not the app of this key ({app.app_id!r})."
            )
        claim = services.lease_claim(app=app, task=task)
        return Response(claim_body(request, claim))


class HeartbeatAPI(HarnessAPIView):
    @extend_schema(
        tags=["harness"],
        summary="Extend the lease",
        request=HeartbeatIn,
        responses={200: HeartbeatOut, **problems(403, *POST_PROBLEMS)},
    )
    @idempotent
    def post(self, request: Request, task_id: str) -> Response:
        task = self.task(request, task_id)
        data = validated(HeartbeatIn, body(request))
        beat = services.lease_heartbeat(
            app=self.app(request),
            task=task,
            run_id=data["run_id"],
            lease_epoch=data.get("lease_epoch"),
            checkpoint=data.get("checkpoint"),
        )
        answers = selectors.task_answers(beat.task)
        out = HeartbeatOut(
            {
                "run": beat.run,
                "task": beat.task,
                "cancel_requested": beat.cancel_requested,
                "answers": answers,
                "messages": beat.messages,
            }
        )
        return Response(out.data)


class StepsAPI(HarnessAPIView):
    @extend_schema(
        tags=["harness"],
        summary="Report a user-visible step",
        description="Emits os.harness.step. A repeated client_step_id returns the first step.",
        request=StepIn,
        responses={201: StepOut, **problems(403, *POST_PROBLEMS)},
    )
    @idempotent
    def post(self, request: Request, task_id: str) -> Response:
        task = self.task(request, task_id)
        data = validated(StepIn, body(request))
        recorded = services.step_record(
            app=self.app(request),
            task=task,
            run_id=data["run_id"],
            lease_epoch=data.get("lease_epoch"),
            phase=data["phase"],
            user_message=data["user_message"],
            internal_label=data.get("internal_label", ""),
            client_step_id=data.get("client_step_id"),
        )
        headers = {"Idempotent-Replayed": "true"} if recorded.replayed else None
        return Response(StepOut(recorded.step).data, status=201, headers=headers)


class InterruptAPI(HarnessAPIView):
    @extend_schema(
        tags=["harness"],
        summary="Pause the task and ask the user a question",
        request=InterruptIn,
        responses={200: InterruptOut, **problems(403, *POST_PROBLEMS)},
    )
    @idempotent
    def post(self, request: Request, task_id: str) -> Response:
        task = self.task(request, task_id)
        data = validated(InterruptIn, body(request))
        interrupt = services.interrupt_raise(
            app=self.app(request),
            task=task,
            run_id=data["run_id"],
            lease_epoch=data.get("lease_epoch"),
            question=data["question"],
            choices=data.get("choices", []),
            allow_free_text=data["allow_free_text"],
        )
        return Response(InterruptOut(interrupt).data)
