"""How a harness finds work (docs/contract.md §6): the tasks it may claim, and claim-next,
a long poll that hands out the oldest of them (api/longpoll.py does the waiting)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from api import longpoll
from api.errors import Forbidden
from api.fields import validated
from api.idempotency import idempotent
from api.pagination import CursorPaged
from api.views import POST_PROBLEMS, body, problems
from tasks import selectors, services
from tasks.apis import HarnessAPIView
from tasks.events import ready_group
from tasks.run_apis import claim_body
from tasks.serializers.harness import ClaimOut, HarnessTaskOut
from tasks.serializers.inputs import ClaimNextIn
from tasks.serializers.queries import HarnessTaskListQuery


class HarnessTaskListAPI(CursorPaged, HarnessAPIView):
    cursor_ordering, cursor_kind = "public_id", str

    @extend_schema(
        tags=["harness"],
        summary="The ready tasks this app may claim, oldest first",
        description=(
            "Unassigned tasks of the app's org and the ones assigned to this app. "
            "`status` may only be `ready` (the default)."
        ),
        operation_id="harness_tasks_list",
        parameters=[HarnessTaskListQuery],
        responses={200: HarnessTaskOut(many=True), **problems(400)},
    )
    def get(self, request: Request) -> Response:
        validated(HarnessTaskListQuery, request.query_params)
        page = self.paginate_queryset(selectors.claimable_tasks(self.app(request)))
        rows = HarnessTaskOut(page, many=True, context={"request": request}).data
        return self.get_paginated_response(rows)


class ClaimNextAPI(HarnessAPIView):
    # Each long poll counts once against ETHER_RATE_CLAIM (on top of the harness limit).
    throttle_scopes_by_method = {"POST": ("claim",)}

    def prepare_idempotent(self, request: Request) -> None:
        """Overdue leases of the org are recorded outside the request's own transaction
        (see idempotent), so their tasks are ready for this claim and stay expired."""
        services.leases_sweep(org_id=self.app(request).org_id)

    def get_throttles(self) -> list[Any]:
        poll = longpoll.current(self.request)
        if poll is not None and poll.is_relook:
            return []  # the same request looking again: counted at its first look
        return super().get_throttles()

    @extend_schema(
        tags=["harness"],
        summary="Claim the oldest ready task this app may take, waiting up to `wait` s",
        description=(
            "200 with the claim body of `POST /api/harness/tasks/{task_id}/claim` for the "
            "oldest ready task that is unassigned or assigned to this app; 204 (no body) "
            "when there is none after `wait` seconds (0-30, default 0). A task is granted "
            "once however many callers race. While waiting, the request holds no server "
            "thread and no database connection; a task made ready meanwhile is handed out "
            "within about a second."
        ),
        request=ClaimNextIn,
        responses={
            200: ClaimOut,
            204: OpenApiResponse(description="No task became ready within `wait` seconds"),
            **problems(403, *POST_PROBLEMS),
        },
    )
    @idempotent
    def post(self, request: Request) -> Response:
        data = validated(ClaimNextIn, body(request))
        app = self.app(request)
        if data["app_id"] != app.app_id:
            raise Forbidden(
                f"app_id {data['app_id']!r} is not the app of this key ({app.app_id!r})."
            )
        claim = services.lease_claim_next(app=app)
        if claim is not None:
            return Response(claim_body(request, claim))
        return longpoll.nothing_yet(request, wait=data["wait"], group=ready_group(app.org))
