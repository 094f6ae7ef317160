"""``/v1/harnesses`` the Everruns way (docs/contract.md §4, "Everruns compatibility"):
the bare token, unpaged lists, network lists, the extra routes and the PATCH/DELETE
rules Everruns' clients rely on. Responses are checked against Everruns' OpenAPI by the
fixture in tests/tasks/conftest.py."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.helpers import problem

pytestmark = pytest.mark.django_db


def bare(secret: str) -> Client:
    return Client(HTTP_AUTHORIZATION=secret)


# --- the bare token --------------------------------------------------------------------------
def test_v1_takes_a_personal_token_without_bearer(world):
    response = bare(world.token).get("/v1/harnesses")
    assert response.status_code == 200
    assert "generic" in [h["name"] for h in response.json()["data"]]


@pytest.mark.parametrize(
    "header",
    [
        "eth_pat_" + "x" * 43,  # our format, unknown token
        "evr_pat_0123456789abcdef",  # Everruns' own format: not ours
        "Basic YWxpY2U6cGFzcw==",
        "token",
        "",
    ],
)
def test_v1_refuses_anything_else_without_bearer(world, header):
    problem(bare(header).get("/v1/harnesses"), 401, "not_authenticated")


def test_a_bare_harness_key_is_refused_on_v1_and_bare_tokens_only_work_on_v1(world):
    body = problem(bare(world.key).get("/v1/harnesses"), 401, "not_authenticated")
    assert "personal access token" in body["detail"]
    # The product API and the harness API keep the Bearer scheme.
    problem(bare(world.token).get("/api/tasks"), 401, "not_authenticated")
    problem(bare(world.key).get("/api/harness/tools"), 401, "not_authenticated")
    # A bare token with trailing junk is not a token.
    problem(bare(world.token + " x").get("/v1/harnesses"), 401, "not_authenticated")
