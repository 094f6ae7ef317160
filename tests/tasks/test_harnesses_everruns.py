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


# --- lists -----------------------------------------------------------------------------------
def test_the_list_is_one_unpaged_data_list_unless_limit_or_cursor_is_given(world):
    from tasks.models import Harness

    Harness.objects.bulk_create(
        Harness(org=world.org, name=f"h{n:03d}", display_name=f"H {n}") for n in range(60)
    )
    me = world.person()
    everything = me.get("/v1/harnesses").json()
    assert len(everything["data"]) == 61 and everything["next_cursor"] is None
    names = [h["name"] for h in everything["data"]]
    assert names[:1] == ["generic"] or "generic" in names
    page = me.get("/v1/harnesses?limit=50").json()
    assert len(page["data"]) == 50 and page["next_cursor"]
    rest = me.get(f"/v1/harnesses?cursor={page['next_cursor']}").json()
    assert len(rest["data"]) == 11 and rest["next_cursor"] is None
    assert [h["name"] for h in page["data"] + rest["data"]] == names
    # The search narrows the unpaged list too.
    assert len(me.get("/v1/harnesses?search=h05").json()["data"]) == 10
