"""Product task routes (docs/contract.md §2), and the base views of the harness routes
(``HarnessAPIView``) and of the product routes on one task (``TaskUserAPIView``). Thin:
parse, call one service or selector, render. The harness's routes on a task live in
``tasks.run_apis``, the result route in ``delivery.apis``, tickets and the client
configuration in ``tasks.realtime.apis``."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.auth import UserAPIView
from api.errors import NotFound
from api.fields import validated
from api.idempotency import idempotent
from api.pagination import CursorPaged
from api.views import POST_PROBLEMS, body, problems
from tasks import selectors, services
from tasks.events import frame
from tasks.harnesses.auth import HarnessKeyAuthentication, IsHarnessApp
from tasks.models import HarnessApp, Task
from tasks.serializers.inputs import (
    AnswerIn,
    EmptyIn,
    MessageIn,
    ReopenIn,
    TaskCreateIn,
    TaskUpdateIn,
)
from tasks.serializers.outputs import EventOut, MessageOut, TaskOut
from tasks.serializers.queries import TaskListQuery


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


def task_body(task: Task) -> dict[str, Any]:
    return TaskOut(task).data


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
        parameters=[TaskListQuery],
        responses={200: TaskOut(many=True), **problems(400)},
    )
    def get(self, request: Request) -> Response:
        status = validated(TaskListQuery, request.query_params).get("status")
        queryset = selectors.tasks_for_org(org=self.org(request), status=status)
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(TaskOut(page, many=True).data)

    @extend_schema(
        tags=["tasks"],
        summary="Create a task",
        request=TaskCreateIn,
        responses={201: TaskOut, **problems(*POST_PROBLEMS)},
    )
    @idempotent
    def post(self, request: Request) -> Response:
        data = validated(TaskCreateIn, body(request))
        task = services.task_create(org=self.org(request), owner=request.user, **data)
        return Response(task_body(task), status=201)


class TaskDetailAPI(UserAPIView):
    @extend_schema(tags=["tasks"], summary="One task", responses={200: TaskOut, **problems(404)})
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
        request=TaskUpdateIn,
        responses={200: TaskOut, **problems(404, 409)},
    )
    def patch(self, request: Request, task_id: str) -> Response:
        task = selectors.task_get(org=self.org(request), task_id=task_id)
        changes = validated(TaskUpdateIn, body(request))
        task = services.task_update(task=task, user=request.user, changes=changes)
        return Response(task_body(selectors.task_get(org=self.org(request), task_id=task_id)))


class TaskAnswerAPI(TaskUserAPIView):
    @extend_schema(
        tags=["tasks"],
        summary="Answer the paused task's open question",
        request=AnswerIn,
        responses={200: TaskOut, **problems(*POST_PROBLEMS)},
    )
    @idempotent
    def post(self, request: Request, task_id: str) -> Response:
        task = selectors.task_get(org=self.org(request), task_id=task_id)
        data = validated(AnswerIn, body(request))
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
            request=EmptyIn,
            responses={200: TaskOut, **problems(*POST_PROBLEMS)},
        )
        @idempotent
        def post(self, request: Request, task_id: str) -> Response:
            task = selectors.task_get(org=self.org(request), task_id=task_id)
            validated(EmptyIn, body(request))
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
        request=ReopenIn,
        responses={200: TaskOut, **problems(*POST_PROBLEMS)},
    )
    @idempotent
    def post(self, request: Request, task_id: str) -> Response:
        task = selectors.task_get(org=self.org(request), task_id=task_id)
        data = validated(ReopenIn, body(request))
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
        request=MessageIn,
        responses={201: MessageOut, **problems(*POST_PROBLEMS)},
    )
    @idempotent
    def post(self, request: Request, task_id: str) -> Response:
        task = selectors.task_get(org=self.org(request), task_id=task_id)
        data = validated(MessageIn, body(request))
        message = services.task_message_send(task=task, user=request.user, text=data["text"])
        return Response(MessageOut(message).data, status=201)


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
        responses={200: EventOut(many=True), **problems(400, 404)},
    )
    def get(self, request: Request, task_id: str) -> Response:
        task = selectors.task_get(org=self.org(request), task_id=task_id)
        services.lease_settle(task_pk=task.pk)
        rows = self.paginate_queryset(selectors.timeline_events(task))
        return self.get_paginated_response([frame(e) for e in rows])
