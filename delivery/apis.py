"""The result route: where a harness hands over its outcome (CONTRACT §3)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from corpus.http.fields import validated
from corpus.http.idempotency import idempotent
from corpus.http.views import IDEMPOTENCY_HEADER, POST_PROBLEMS, body, problems
from delivery.services import delivery_result_submit
from tasks import serializers as s
from tasks.apis import HarnessAPIView


class ResultAPI(HarnessAPIView):
    @extend_schema(
        tags=["harness"],
        summary="Submit the run's result",
        description=(
            "submitted → completed (a PR must be in the task's repository and branch_scope, "
            "else 422 out_of_scope); blocked → paused with `question`; no_changes → "
            "no_changes with `no_changes_reason`. Ends the run. The same result again answers "
            "as the first time; another result for a finished run is 409 run_finished."
        ),
        request=s.ResultIn,
        parameters=[IDEMPOTENCY_HEADER],
        responses={200: s.ResultOut, **problems(403, *POST_PROBLEMS)},
    )
    @idempotent
    def post(self, request: Request, task_id: str) -> Response:
        task = self.task(request, task_id)
        data = validated(s.ResultIn, body(request))
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
        )
        answer = dict(submitted.result.response)
        headers = {"Idempotent-Replayed": "true"} if submitted.replayed else None
        return Response(answer, headers=headers)
