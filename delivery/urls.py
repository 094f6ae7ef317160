"""The people's pages: ``/tasks/`` and one task's live, replay and compaction pages."""

from __future__ import annotations

from django.urls import path

from delivery import views

app_name = "pages"

urlpatterns = [
    path("", views.grid, name="grid"),
    path("<str:task_id>", views.task_page, name="task"),
    path("<str:task_id>/replay", views.replay, name="replay"),
    path("<str:task_id>/compaction", views.compaction, name="compaction"),
]
