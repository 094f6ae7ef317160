"""Issue 12, item 7 (d): what Django refuses on its own is a problem document on the API.

A bad ``Host``, too many query parameters, an undecodable request, an unknown route, a
crash, a CSRF failure: on /api/ and /v1/ each answers ``application/problem+json`` with
DEBUG on (``make run``) and off, never Django's HTML page. Product pages keep HTML.
"""

from __future__ import annotations

import pytest
from django.http import HttpRequest, HttpResponse
from django.test import Client, override_settings
from django.urls import include, path

from tests.helpers import asgi_http, problem


def boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("a bug")


# This module is also the URLconf of the crash test: the site's routes plus two that fail,
# with the site's error handlers.
handler400 = "api.problems.handler400"
handler404 = "api.problems.handler404"
handler500 = "api.problems.handler500"
urlpatterns = [
    path("api/boom", boom),
    path("boom", boom),
    path("", include("ether_site.urls")),
]

DEBUG = pytest.mark.parametrize("debug", [True, False], ids=["debug_on", "debug_off"])


@DEBUG
@pytest.mark.parametrize("where", ["/api/tasks", "/v1/harnesses", "/api/nope"])
def test_a_disallowed_host_on_the_api_is_a_400_problem(world, debug, where):
    with override_settings(DEBUG=debug):
        response = world.person().get(where, HTTP_HOST="evil.example")
    body = problem(response, 400, "bad_request")
    assert "evil.example" not in response.content.decode()
    assert body["type"] == "https://ether.dev/problems/bad_request"


@DEBUG
def test_a_disallowed_host_on_a_product_page_is_still_refused(db, debug):
    with override_settings(DEBUG=debug):
        response = Client().get("/login/", HTTP_HOST="evil.example")
    assert response.status_code == 400


@DEBUG
def test_too_many_query_parameters_is_a_400_problem(world, debug):
    query = "&".join(f"p{i}=1" for i in range(1500))
    client = Client(raise_request_exception=False)
    with override_settings(DEBUG=debug):
        response = client.get(f"/api/tasks?{query}", **world.person().headers)
    problem(response, 400, "bad_request")


@DEBUG
@pytest.mark.parametrize("where", ["/api/tasks/task_nothex/nothing", "/v1/nothing", "/api"])
def test_an_unknown_api_route_is_a_404_problem(db, debug, where):
    with override_settings(DEBUG=debug):
        response = Client().get(where)
    problem(response, 404, "not_found")


@DEBUG
def test_a_crash_on_the_api_is_a_500_problem_and_a_page_elsewhere(db, debug, settings):
    settings.ROOT_URLCONF = __name__
    client = Client(raise_request_exception=False)
    with override_settings(DEBUG=debug):
        api = client.get("/api/boom")
        page = client.get("/boom")
    body = problem(api, 500, "server_error")
    assert "a bug" not in body["detail"] and b"Traceback" not in api.content
    assert page.status_code == 500


@DEBUG
def test_a_csrf_failure_on_the_api_is_a_403_problem(world, debug, task):
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.user)
    with override_settings(DEBUG=debug):
        response = client.post(f"/api/tasks/{task.public_id}/cancel", "{}", "application/json")
        unknown = client.post("/api/nothing", "{}", "application/json")
    problem(response, 403, "forbidden")
    problem(unknown, 404, "not_found")


async def asgi_get(path: str, query: bytes) -> tuple[int, dict[bytes, bytes], bytes]:
    """One GET through the ASGI application daphne serves, with raw query bytes."""
    from ether_site.asgi import application

    status, headers, body = await asgi_http(application, "GET", path, query=query, timeout=5)
    return status, dict(headers), body


@DEBUG
async def test_an_undecodable_query_string_is_a_400_problem_on_the_api(debug):
    import json

    with override_settings(DEBUG=debug):
        status, headers, body = await asgi_get("/api/tasks", b"limit=\xff\xfe")
        page_status, page_headers, _ = await asgi_get("/login/", b"next=\xff")
    assert status == 400
    assert headers[b"Content-Type"].startswith(b"application/problem+json")
    assert json.loads(body)["code"] == "bad_request"
    # A product page keeps Django's own answer.
    assert page_status == 400
    assert not page_headers[b"Content-Type"].startswith(b"application/problem+json")
