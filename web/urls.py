"""The people's pages: ``/tasks/`` and one task's live, replay and compaction pages
(``pages``, namespaced ``pages:``), and signing in and out (``session``)."""

from __future__ import annotations

from django.urls import path

from web import views

pages = (
    [
        path("", views.grid, name="grid"),
        path("<str:task_id>", views.task_page, name="task"),
        path("<str:task_id>/replay", views.replay, name="replay"),
        path("<str:task_id>/compaction", views.compaction, name="compaction"),
    ],
    "pages",
)

session = [
    path("login/", views.sign_in, name="login"),
    path("logout/", views.sign_out, name="logout"),
    path("", views.home, name="home"),
]
