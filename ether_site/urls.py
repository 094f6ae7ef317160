from __future__ import annotations

from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from corpus.http.problems import api_not_found
from delivery.views import home, sign_in, sign_in_throttled, sign_out
from tasks.urls import definitions, harness, product

handler400 = "corpus.http.problems.handler400"
handler403 = "corpus.http.problems.handler403"
handler404 = "corpus.http.problems.handler404"
handler500 = "corpus.http.problems.handler500"

urlpatterns = [
    path("api/harness/", include(harness)),
    path("api/", include(product)),
    path("api/", include("corpus.urls")),
    path("v1/", include(definitions)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves Swagger UI's start-up script as a file, so the docs page
    # needs no inline script under the Content-Security-Policy.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="api-docs"),
    # The admin's sign-in under the same limit as /login/ (delivery.views.sign_in_throttled).
    path("admin/login/", sign_in_throttled(admin.site.login)),
    path("admin/", admin.site.urls),
    path("tasks/", include("delivery.urls")),
    path("login/", sign_in, name="login"),
    path("logout/", sign_out, name="logout"),
    path("", home, name="home"),
    # Anything else under the API prefixes is a problem document, never an HTML page.
    re_path(r"^(api|v1)(/.*)?$", api_not_found),
]
