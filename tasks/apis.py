"""Harness routes (docs/contract.md §3) and product task routes (§2). Thin: parse, call
one service or selector, render. The result route lives in ``delivery.apis``."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.auth import USER_AUTHENTICATION, IsOrgMember, UserAPIView
from accounts.credentials import HARNESS_KEY_PREFIX
from accounts.models import AccessToken
from api.auth import bearer_token
from api.errors import Forbidden, NotFound
from api.fields import validated
from api.idempotency import idempotent
from api.pagination import CursorPaged
from api.public_url import public_origin, websocket_origin
from api.views import POST_PROBLEMS, body, problems
from tasks import selectors, services
from tasks import serializers as s
from tasks.events import frame
from tasks.harnesses.auth import HarnessKeyAuthentication, IsHarnessApp
from tasks.models import HarnessApp, Task


class HarnessAPIView(APIView):
    """Harness routes: an app key, acting on tasks of the app's own org."""

    authentication_classes = [HarnessKeyAuthentication]
    permission_classes = [IsHarnessApp]
    throttle_scope = "harness"  # ETHER_RATE_HARNESS, per app key (api.ratelimit)

    def app(self, request: Request) -> HarnessApp:
        return request.auth

    def task(self, request: Request, task_id: str) -> Task:
        return selectors.task_get(org=self.app(request).org, task_id=task_id)

    def prepare_idempotent(self, request: Request, task_id: str) -> None:
        """Records a lapsed lease outside the request's own transaction (see idempotent)."""
        settle_quietly(org=self.app(request).org, task_id=task_id)


def settle_quietly(*, org: Any, task_id: str) -> None:
    try:
        task = selectors.task_get(org=org, task_id=task_id)
    except NotFound:
        return  # the handler answers the 404
    services.lease_settle(task_pk=task.pk)


def bundle_body(request: Request, *, task: Task, app: HarnessApp) -> dict[str, Any]:
    bundle = selectors.execution_bundle(task=task, app=app)
    return s.BundleOut(bundle, context={"request": request}).data


def claim_body(request: Request, claim: services.Claim) -> dict[str, Any]:
    bundle = selectors.execution_bundle(task=claim.task, app=claim.run.app)
    return s.ClaimOut({"run": claim.run, "bundle": bundle}, context={"request": request}).data


class ExecutionPreviewAPI(HarnessAPIView):
    @extend_schema(
        tags=["harness"],
        summary="Preview the execution bundle without claiming",
        responses={200: s.BundleOut, **problems(404)},
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
        request=s.ClaimIn,
        responses={200: s.ClaimOut, **problems(403, *POST_PROBLEMS)},
    )
    @idempotent
    def post(self, request: Request, task_id: str) -> Response:
        task = self.task(request, task_id)
        data = validated(s.ClaimIn, body(request))
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
        request=s.HeartbeatIn,
        responses={200: s.HeartbeatOut, **problems(403, *POST_PROBLEMS)},
    )
    @idempotent
    def post(self, request: Request, task_id: str) -> Response:
        task = self.task(request, task_id)
        data = validated(s.HeartbeatIn, body(request))
        beat = services.lease_heartbeat(
            app=self.app(request),
            task=task,
            run_id=data["run_id"],
            lease_epoch=data.get("lease_epoch"),
            checkpoint=data.get("checkpoint"),
        )
        answers = selectors.task_answers(beat.task)
        out = s.HeartbeatOut(
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
        request=s.StepIn,
        responses={201: s.StepOut, **problems(403, *POST_PROBLEMS)},
    )
    @idempotent
    def post(self, request: Request, task_id: str) -> Response:
        task = self.task(request, task_id)
        data = validated(s.StepIn, body(request))
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
        return Response(s.StepOut(recorded.step).data, status=201, headers=headers)


class InterruptAPI(HarnessAPIView):
    @extend_schema(
        tags=["harness"],
        summary="Pause the task and ask the user a question",
        request=s.InterruptIn,
        responses={200: s.InterruptOut, **problems(403, *POST_PROBLEMS)},
    )
    @idempotent
    def post(self, request: Request, task_id: str) -> Response:
        task = self.task(request, task_id)
        data = validated(s.InterruptIn, body(request))
        interrupt = services.interrupt_raise(
            app=self.app(request),
            task=task,
            run_id=data["run_id"],
            lease_epoch=data.get("lease_epoch"),
            question=data["question"],
            choices=data.get("choices", []),
            allow_free_text=data["allow_free_text"],
        )
        return Response(s.InterruptOut(interrupt).data)


# --- Product --------------------------------------------------------------------------


def task_body(task: Task) -> dict[str, Any]:
    return s.TaskOut(task).data


class TaskUserAPIView(UserAPIView):
    def prepare_idempotent(self, request: Request, task_id: str) -> None:
        settle_quietly(org=self.org(request), task_id=task_id)


class TaskListAPI(CursorPaged, UserAPIView):
    # Public ids are UUIDv7: ordering by them is ordering by creation.
    cursor_ordering, cursor_kind = "-public_id", str

    @extend_schema(
        tags=["tasks"],
        summary="List the org's tasks, newest first",
        operation_id="tasks_list",
        parameters=[s.TaskListQuery],
        responses={200: s.TaskOut(many=True), **problems(400)},
    )
    def get(self, request: Request) -> Response:
        status = validated(s.TaskListQuery, request.query_params).get("status")
        queryset = selectors.tasks_for_org(org=self.org(request), status=status)
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(s.TaskOut(page, many=True).data)

    @extend_schema(
        tags=["tasks"],
        summary="Create a task",
        request=s.TaskCreateIn,
        responses={201: s.TaskOut, **problems(*POST_PROBLEMS)},
    )
    @idempotent
    def post(self, request: Request) -> Response:
        data = validated(s.TaskCreateIn, body(request))
        task = services.task_create(org=self.org(request), owner=request.user, **data)
        return Response(task_body(task), status=201)


class TaskDetailAPI(UserAPIView):
    @extend_schema(tags=["tasks"], summary="One task", responses={200: s.TaskOut, **problems(404)})
    def get(self, request: Request, task_id: str) -> Response:
        task = selectors.task_get(org=self.org(request), task_id=task_id)
        services.lease_settle(task_pk=task.pk)
        task.refresh_from_db()
        return Response(task_body(task))

    @extend_schema(
        tags=["tasks"],
        summary="Edit a ready or paused task (title, prompt, definition of done, branch "
        "scope, assignment)",
        description=(
            "Fields sent are changed, the others kept; the task document is rewritten. "
            "409 task_not_editable unless the task is ready or paused. assigned_app_id "
            "must name an unrevoked harness app of the org (400), or be null for any app."
        ),
        request=s.TaskUpdateIn,
        responses={200: s.TaskOut, **problems(404, 409)},
    )
    def patch(self, request: Request, task_id: str) -> Response:
        task = selectors.task_get(org=self.org(request), task_id=task_id)
        changes = validated(s.TaskUpdateIn, body(request))
        task = services.task_update(task=task, user=request.user, changes=changes)
        return Response(task_body(selectors.task_get(org=self.org(request), task_id=task_id)))


class TaskAnswerAPI(TaskUserAPIView):
    @extend_schema(
        tags=["tasks"],
        summary="Answer the paused task's open question",
        request=s.AnswerIn,
        responses={200: s.TaskOut, **problems(*POST_PROBLEMS)},
    )
    @idempotent
    def post(self, request: Request, task_id: str) -> Response:
        task = selectors.task_get(org=self.org(request), task_id=task_id)
        data = validated(s.AnswerIn, body(request))
        services.task_answer(task=task, user=request.user, answer=data["answer"])
        task.refresh_from_db()
        return Response(task_body(task))


def _transition(service_name: str, summary: str, text: str) -> type[UserAPIView]:
    service = getattr(services, service_name)

    class TransitionAPI(TaskUserAPIView):
        @extend_schema(
            tags=["tasks"],
            summary=summary,
            description=text,
            request=s.EmptyIn,
            responses={200: s.TaskOut, **problems(*POST_PROBLEMS)},
        )
        @idempotent
        def post(self, request: Request, task_id: str) -> Response:
            task = selectors.task_get(org=self.org(request), task_id=task_id)
            validated(s.EmptyIn, body(request))
            service(task=task, user=request.user)
            task.refresh_from_db()
            return Response(task_body(task))

    TransitionAPI.__name__ = TransitionAPI.__qualname__ = (
        "Task" + service_name.split("_")[-1].title() + "API"
    )
    return TransitionAPI


class TaskReopenAPI(TaskUserAPIView):
    @extend_schema(
        tags=["tasks"],
        summary="Reopen a completed or no-changes task, optionally with feedback",
        description=(
            "Back to ready; 409 invalid_transition from any other status. feedback is kept "
            "in the timeline and the task document, listed in every later bundle's feedback "
            "and sent as the task.feedback webhook."
        ),
        request=s.ReopenIn,
        responses={200: s.TaskOut, **problems(*POST_PROBLEMS)},
    )
    @idempotent
    def post(self, request: Request, task_id: str) -> Response:
        task = selectors.task_get(org=self.org(request), task_id=task_id)
        data = validated(s.ReopenIn, body(request))
        services.task_reopen(task=task, user=request.user, feedback=data.get("feedback") or None)
        task.refresh_from_db()
        return Response(task_body(task))


class TaskMessagesAPI(TaskUserAPIView):
    @extend_schema(
        tags=["tasks"],
        summary="Tell the harness working on the task something",
        description=(
            "Only while the task is in_progress (else 409 task_not_in_progress). Kept in the "
            "timeline and the task document; the live run's next heartbeat carries it in "
            "messages, once; sent as the task.message webhook."
        ),
        request=s.MessageIn,
        responses={201: s.MessageOut, **problems(*POST_PROBLEMS)},
    )
    @idempotent
    def post(self, request: Request, task_id: str) -> Response:
        task = selectors.task_get(org=self.org(request), task_id=task_id)
        data = validated(s.MessageIn, body(request))
        message = services.task_message_send(task=task, user=request.user, text=data["text"])
        return Response(s.MessageOut(message).data, status=201)


TaskCancelAPI = _transition(
    "task_cancel",
    "Cancel a task",
    "Its live run sees cancel_requested on its next heartbeat, then task_closed on writes.",
)
TaskReleaseAPI = _transition(
    "lease_release",
    "Release a stuck live run",
    "The run is marked released and fenced like an expired one; 409 no_live_run without one.",
)


class TaskTimelineAPI(CursorPaged, UserAPIView):
    cursor_ordering = "seq"

    @extend_schema(
        tags=["tasks"],
        summary="The task's timeline entries, oldest first",
        responses={200: s.EventOut(many=True), **problems(400, 404)},
    )
    def get(self, request: Request, task_id: str) -> Response:
        task = selectors.task_get(org=self.org(request), task_id=task_id)
        services.lease_settle(task_pk=task.pk)
        rows = self.paginate_queryset(selectors.timeline_events(task))
        return self.get_paginated_response([frame(e) for e in rows])


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
        request=s.EmptyIn,
        responses={201: s.TicketOut, **problems(*POST_PROBLEMS)},
    )
    @idempotent
    def post(self, request: Request) -> Response:
        validated(s.EmptyIn, body(request))
        if isinstance(request.auth, HarnessApp):
            issued = services.ticket_create(app=request.auth)
        else:
            # Minted with a token, the ticket's socket is that token's stream (ends on revoke).
            token = request.auth if isinstance(request.auth, AccessToken) else None
            issued = services.ticket_create(user=request.user, token=token)
        return Response(s.TicketOut(issued).data, status=201)


class ConfigAPI(APIView):
    """What a frontend needs to connect; public, it holds no secret."""

    authentication_classes: list = []
    permission_classes: list = []

    @extend_schema(tags=["realtime"], summary="Client configuration", responses={200: s.ConfigOut})
    def get(self, request: Request) -> Response:
        http_base = public_origin(request)
        ws_base = websocket_origin(request)
        realtime = {
            "prefer_websocket": settings.ETHER_REALTIME_PREFER_WEBSOCKET,
            "websocket_url": ws_base + "/api/realtime",
            "sse_url_template": http_base + "/api/tasks/{task_id}/events",
            "activity_sse_url": http_base + "/api/activity/events",
        }
        return Response(s.ConfigOut({"realtime": realtime}).data)
