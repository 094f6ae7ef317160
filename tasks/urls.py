"""The tasks app's routes: the harness API (``harness``, under /api/harness/), the product
API (``product``, under /api/) and harness definitions (``definitions``, under /v1/)."""

from __future__ import annotations

from django.urls import path

from tasks import apis, context_apis, dispatch_apis, memory_apis, run_apis
from tasks.harnesses import apis as harness_apis
from tasks.harnesses import authoring_apis
from tasks.realtime import apis as realtime_apis
from tasks.realtime import sse
from tasks.webhooks import apis as webhook_apis

harness = [
    path("tasks", dispatch_apis.HarnessTaskListAPI.as_view(), name="harness-task-list"),
    # Served through api.longpoll.LongPollASGI (ether_site/asgi.py), which waits between looks.
    path("claim-next", dispatch_apis.ClaimNextAPI.as_view(), name="harness-claim-next"),
    path(
        "tasks/<str:task_id>/execution",
        run_apis.ExecutionPreviewAPI.as_view(),
        name="harness-execution",
    ),
    path("tasks/<str:task_id>/claim", run_apis.ClaimAPI.as_view(), name="harness-claim"),
    path(
        "tasks/<str:task_id>/heartbeat", run_apis.HeartbeatAPI.as_view(), name="harness-heartbeat"
    ),
    path("tasks/<str:task_id>/steps", run_apis.StepsAPI.as_view(), name="harness-steps"),
    path(
        "tasks/<str:task_id>/interrupt", run_apis.InterruptAPI.as_view(), name="harness-interrupt"
    ),
    path("context", context_apis.ContextAPI.as_view(), name="harness-context"),
    path("context/pack", context_apis.ContextPackAPI.as_view(), name="harness-context-pack"),
    path(
        "context/doc/<path:doc_id>",
        context_apis.ContextDocAPI.as_view(),
        name="harness-context-doc",
    ),
    path("tools", context_apis.ToolsAPI.as_view(), name="harness-tools"),
    path("skills", context_apis.SkillsAPI.as_view(), name="harness-skills"),
]

product = [
    path("tasks", apis.TaskListAPI.as_view(), name="task-list"),
    path("tasks/<str:task_id>", apis.TaskDetailAPI.as_view(), name="task-detail"),
    path("tasks/<str:task_id>/answer", apis.TaskAnswerAPI.as_view(), name="task-answer"),
    path(
        "tasks/<str:task_id>/memory/promote",
        memory_apis.MemoryPromoteAPI.as_view(),
        name="task-memory-promote",
    ),
    path("tasks/<str:task_id>/reopen", apis.TaskReopenAPI.as_view(), name="task-reopen"),
    path("tasks/<str:task_id>/messages", apis.TaskMessagesAPI.as_view(), name="task-messages"),
    path("tasks/<str:task_id>/cancel", apis.TaskCancelAPI.as_view(), name="task-cancel"),
    path("tasks/<str:task_id>/release", apis.TaskReleaseAPI.as_view(), name="task-release"),
    path("tasks/<str:task_id>/timeline", apis.TaskTimelineAPI.as_view(), name="task-timeline"),
    path("tasks/<str:task_id>/events", sse.TaskEventsAPI.as_view(), name="task-events"),
    path("realtime/tickets", realtime_apis.RealtimeTicketAPI.as_view(), name="realtime-tickets"),
    path("config", realtime_apis.ConfigAPI.as_view(), name="config"),
    path("harness-apps", harness_apis.HarnessAppListAPI.as_view(), name="harness-app-list"),
    path(
        "harness-apps/<str:app_id>",
        harness_apis.HarnessAppDetailAPI.as_view(),
        name="harness-app-detail",
    ),
    path(
        "harness-apps/<str:app_id>/webhook/secret",
        webhook_apis.WebhookSecretAPI.as_view(),
        name="harness-app-webhook-secret",
    ),
    path(
        "harness-apps/<str:app_id>/webhook/test",
        webhook_apis.WebhookTestAPI.as_view(),
        name="harness-app-webhook-test",
    ),
]

definitions = [
    path("harnesses", harness_apis.HarnessListAPI.as_view(), name="harness-list"),
    # Before harnesses/<harness_id>: these words are routes, never names (reserved).
    path(
        "harnesses/check-name",
        authoring_apis.HarnessCheckNameAPI.as_view(),
        name="harness-check-name",
    ),
    path("harnesses/config", authoring_apis.HarnessConfigAPI.as_view(), name="harness-config"),
    path("harnesses/import", authoring_apis.HarnessImportAPI.as_view(), name="harness-import"),
    path("harnesses/preview", authoring_apis.HarnessPreviewAPI.as_view(), name="harness-preview"),
    path(
        "harness-examples",
        authoring_apis.HarnessExamplesAPI.as_view(),
        name="harness-examples",
    ),
    path(
        "harnesses/<str:harness_id>", harness_apis.HarnessDetailAPI.as_view(), name="harness-detail"
    ),
    path(
        "harnesses/<str:harness_id>/copy",
        harness_apis.HarnessCopyAPI.as_view(),
        name="harness-copy",
    ),
    path(
        "harnesses/<str:harness_id>/stats",
        authoring_apis.HarnessStatsAPI.as_view(),
        name="harness-stats",
    ),
]
