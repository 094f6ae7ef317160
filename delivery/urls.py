"""The delivery app's routes: a harness submits its result (``harness``, under
/api/harness/); people read the delivery and rate it (``product``, under /api/)."""

from __future__ import annotations

from django.urls import path

from delivery.apis import DeliveryAPI, FeedbackAPI, ResultAPI

harness = [
    path("tasks/<str:task_id>/result", ResultAPI.as_view(), name="harness-result"),
]

product = [
    path("tasks/<str:task_id>/delivery", DeliveryAPI.as_view(), name="task-delivery"),
    path("tasks/<str:task_id>/feedback", FeedbackAPI.as_view(), name="task-feedback"),
]
