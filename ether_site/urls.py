from __future__ import annotations

from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path, re_path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from api.health import HealthzAPI, MetricsAPI, ReadyzAPI
from api.problems import api_not_found
from delivery import urls as delivery_urls
from tasks import urls as task_urls
from web import urls as web_urls
from web.views import sign_in_throttled

handler400 = "api.problems.handler400"
handler403 = "api.problems.handler403"
handler404 = "api.problems.handler404"
handler500 = "api.problems.handler500"

urlpatterns = [
    # Probes and the scrape (docs/deploy.md): unauthenticated, outside the API prefixes.
    path("healthz", HealthzAPI.as_view(), name="healthz"),
    path("readyz", ReadyzAPI.as_view(), name="readyz"),
    path("metrics", MetricsAPI.as_view(), name="metrics"),
    # Browsers ask for /favicon.ico on pages that link none (Swagger UI, JSON): no 404.
    path("favicon.ico", RedirectView.as_view(url=static("favicon.svg"))),
    path("api/harness/", include(task_urls.harness)),
    path("api/harness/", include(delivery_urls.harness)),
    path("api/", include(task_urls.product)),
    path("api/", include(delivery_urls.product)),
    path("api/", include("corpus.urls")),
    path("v1/", include(task_urls.definitions)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves Swagger UI's start-up script as a file, so the docs page
    # needs no inline script under the Content-Security-Policy.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="api-docs"),
    # The admin's sign-in under the same limit as /login/ (web.views.sign_in_throttled).
    path("admin/login/", sign_in_throttled(admin.site.login)),
    path("admin/", admin.site.urls),
    path("tasks/", include(web_urls.pages)),
    path("", include(web_urls.session)),
    # Anything else under the API prefixes is a problem document, never an HTML page.
    re_path(r"^(api|v1)(/.*)?$", api_not_found),
]
