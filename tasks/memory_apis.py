"""Product route of repository-level memory: promote what a task's run learned into the
repository's document (docs/memory.md)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from api.errors import Forbidden, NotFound
from api.fields import validated
from api.idempotency import idempotent
from api.views import POST_PROBLEMS, body, problems
from corpus.apis import IF_MATCH
from corpus.models import DocumentKind
from corpus.selectors import document_in_scope
from corpus.serializers import DocumentOut, PromoteIn, PromoteOut
from corpus.services import repo_memory_promote
from tasks.apis import TaskUserAPIView
from tasks.context import task_scope
from tasks.selectors import task_get


class MemoryPromoteAPI(TaskUserAPIView):
    @extend_schema(
        tags=["documents"],
        summary="Promote part of a task's notes into the repository's memory",
        description=(
            "Appends `text` (a working note of the task, its compacted memory, or part of "
            "either: `source` names which) to the task repository's `repo.md`, under a "
            "heading naming the source. `save: false` answers the diff and the ETag to "
            "send; `save: true` stores it with `If-Match` (`*` when there was no document "
            "yet): a save since the diff is 412 and nothing is lost. Org admins (staff) only."
        ),
        request=PromoteIn,
        parameters=[IF_MATCH],
        responses={200: PromoteOut, **problems(403, 412, *POST_PROBLEMS)},
    )
    @idempotent
    def post(self, request: Request, task_id: str) -> Response:
        org = self.org(request)
        task = task_get(org=org, task_id=task_id)
        data = validated(PromoteIn, body(request))
        if not request.user.is_staff:
            raise Forbidden("Only an org admin (staff) can promote notes into the repository.")
        source = document_in_scope(task_scope(task), data["source"])
        if source.kind not in (DocumentKind.WORKING, DocumentKind.MEMORY):
            raise NotFound(f"{data['source']!r} is not a working note or memory of {task_id}.")
        promotion = repo_memory_promote(
            org=org,
            repo=task.repo,
            user=request.user,
            text=data["text"],
            source=source.path,
            task_ref=task.public_id,
            if_match=request.headers.get("If-Match"),
            save=data["save"],
        )
        document = promotion.document
        answer = {
            "repo": task.repo.full_name,
            "saved": promotion.saved,
            "diff": promotion.diff,
            "before": promotion.before,
            "after": promotion.after,
            "document": DocumentOut(document).data if document is not None else None,
            "etag": document.etag if document is not None else "*",
        }
        headers = {"ETag": document.etag} if document is not None else None
        return Response(answer, headers=headers)
