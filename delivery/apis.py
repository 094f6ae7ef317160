"""The result route, where a harness hands over its outcome (docs/contract.md §3), and the
product routes that read and rate the delivery it produced (docs/contract.md §5)."""

from __future__ import annotations

from functools import cached_property

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.auth import UserAPIView
from api.fields import validated
from api.idempotency import idempotent
from api.views import POST_PROBLEMS, body, problems
from corpus.rendering import Renders
from delivery import selectors
from delivery import serializers as ds
from delivery.compose import summary_markdown
from delivery.services import delivery_feedback, delivery_result_submit
from tasks.apis import HarnessAPIView, TaskUserAPIView
from tasks.selectors import task_get
from tasks.serializers.harness import ResultOut
from tasks.serializers.inputs import ResultIn


class ResultAPI(HarnessAPIView):
    @cached_property
    def renders(self) -> Renders:
        return Renders()  # one view instance per request: the request's renders

    def prepare_idempotent(self, request: Request, task_id: str) -> None:
        """With an Idempotency-Key the handler runs inside the key's transaction (on
        SQLite the write lock, from its first statement): render the summary first."""
        super().prepare_idempotent(request, task_id)
        data = request.data
        if isinstance(data, dict) and all(
            isinstance(data.get(k, ""), str)
            for k in ("status", "working_summary", "agent_status", "no_changes_reason")
        ):
            summary = summary_markdown(
                status=data.get("status", ""),
                working_summary=data.get("working_summary", ""),
                agent_status=data.get("agent_status", ""),
                no_changes_reason=data.get("no_changes_reason", ""),
            )
            self.renders.warm(summary)

    @extend_schema(
        tags=["harness"],
        summary="Submit the run's result",
        description=(
            "submitted → completed (a PR must be in the task's repository and branch_scope, "
            "else 422 out_of_scope); blocked → paused with `question`; no_changes → "
            "no_changes with `no_changes_reason`. Ends the run. The same result again answers "
            "as the first time; another result for a finished run is 409 run_finished. "
            "Every stored result gets a delivery payload (task.delivered, task.blocked or "
            "task.no_changes; docs/delivery.md)."
        ),
        request=ResultIn,
        responses={200: ResultOut, **problems(403, *POST_PROBLEMS)},
    )
    @idempotent
    def post(self, request: Request, task_id: str) -> Response:
        task = self.task(request, task_id)
        data = validated(ResultIn, body(request))
        submitted = delivery_result_submit(
            app=self.app(request),
            task=task,
            run_id=data["run_id"],
            lease_epoch=data.get("lease_epoch"),
            status=data["status"],
            agent_status=data["agent_status"],
            artifact=data.get("artifact"),
            working_summary=data.get("working_summary", ""),
            no_changes_reason=data.get("no_changes_reason", ""),
            question=data.get("question", ""),
            renders=self.renders,
        )
        headers = {"Idempotent-Replayed": "true"} if submitted.replayed else None
        return Response(ResultOut(submitted.result).data, headers=headers)


class DeliveryAPI(UserAPIView):
    @extend_schema(
        tags=["tasks"],
        summary="The task's delivery payload (the newest, or ?version=N)",
        description=(
            "Ordered typed blocks (outcome, hero, summary, checklist, timeline, actions; "
            "docs/delivery.md), as published in task.delivered / task.blocked / "
            "task.no_changes. 404 before the first result or for an unknown version."
        ),
        parameters=[ds.DeliveryQuery],
        responses={200: ds.DeliveryOut, **problems(400, 404)},
    )
    def get(self, request: Request, task_id: str) -> Response:
        task = task_get(org=self.org(request), task_id=task_id)
        version = validated(ds.DeliveryQuery, request.query_params).get("version")
        delivery = selectors.delivery_get(task=task, version=version)
        return Response(ds.DeliveryOut(delivery).data)


class FeedbackAPI(TaskUserAPIView):
    @extend_schema(
        tags=["tasks"],
        summary="Rate the task's newest delivery",
        description=(
            "The delivery's `feedback` action. Recorded as a `feedback` timeline entry "
            "with the delivery's version; 404 before the first delivery."
        ),
        request=ds.FeedbackIn,
        responses={201: ds.FeedbackOut, **problems(*POST_PROBLEMS)},
    )
    @idempotent
    def post(self, request: Request, task_id: str) -> Response:
        task = task_get(org=self.org(request), task_id=task_id)
        data = validated(ds.FeedbackIn, body(request))
        comment = data.get("comment", "")
        delivery = delivery_feedback(
            task=task, user=request.user, rating=data["rating"], comment=comment
        )
        feedback = {"delivery": delivery, "rating": data["rating"], "comment": comment}
        return Response(ds.FeedbackOut(feedback).data, status=201)
