from __future__ import annotations

from django.urls import path

from corpus import apis

urlpatterns = [
    path("context/docs", apis.DocumentListAPI.as_view(), name="doc-list"),
    path("context/docs/<str:doc_id>", apis.DocumentDetailAPI.as_view(), name="doc-detail"),
    path(
        "context/docs/<str:doc_id>/versions",
        apis.DocumentVersionsAPI.as_view(),
        name="doc-versions",
    ),
]
