"""Issue 12, item 7 (a to c): cursors, numbers in query strings, and one list shape.

(a) A cursor is accepted only if it is byte for byte one this server issues: forged
positions (``{"p": 1e30}``, huge, negative, another type), extra keys, padding or any
other spelling are 400 on every list. (b) Numbers in query strings are ASCII digits:
``?limit=`` in fullwidth digits, ``+5``, `` 5``, ``1_0`` are 400, not read as 10. (c) ``GET
/api/harness-apps`` is paged like every other list.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from tests import factories
from tests.helpers import problem


def forge(obj: Any) -> str:
    """A cursor made the way the server makes them, of any JSON value."""
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")


def lists(task: Any) -> list[str]:
    """Every paged list a user can read."""
    return [
        "/api/tasks",
        f"/api/tasks/{task.public_id}/timeline",
        "/api/context/docs",
        "/v1/harnesses",
        "/api/harness-apps",
    ]


FORGED = {
    "a_float_position": forge({"p": 1e30}),
    "a_float_that_is_whole": forge({"p": 5.0}),
    "a_huge_integer": forge({"p": 10**30}),
    "past_bigint": forge({"p": 2**63}),
    "a_negative_position": forge({"p": -1}),
    "zero": forge({"p": 0}),
    "a_boolean": forge({"p": True}),
    "null": forge({"p": None}),
    "a_list_position": forge({"p": [1]}),
    "an_object_position": forge({"p": {"p": 1}}),
    "an_extra_key": forge({"p": 1, "q": 2}),
    "no_position": forge({"q": 1}),
    "a_bare_list": forge([1]),
    "a_bare_number": forge(1),
    "a_string_with_a_quote": forge({"p": "task_x' OR '1'='1"}),
    "a_string_with_a_nul": forge({"p": "task_\u0000"}),
    "a_long_string": forge({"p": "a" * 300}),
    "an_empty_string": forge({"p": ""}),
    "padding_added": forge({"p": 1}) + "==",
    "other_spacing": base64.urlsafe_b64encode(b'{"p":1}').decode().rstrip("="),
    "standard_base64": base64.b64encode(b'{"p": "task_??>>"}').decode(),
    "not_base64": "%%%",
    "not_json": forge("x")[:-1] + "!",
    "deeply_nested": base64.urlsafe_b64encode(b"[" * 5000 + b"]" * 5000).decode(),
}


@pytest.mark.parametrize("case", list(FORGED))
def test_forged_cursor_is_400_on_every_list(world, task, case):
    person = world.person()
    for path in lists(task):
        response = person.get(path, data={"cursor": FORGED[case]})
        body = problem(response, 400, "validation_error")
        assert list(body["errors"]) == ["cursor"], (path, body)


def test_issued_cursors_still_walk_every_list(world, task, claimed):
    """The strict check accepts exactly what the server hands out."""
    person = world.person()
    world.task()
    factories.make_app(world.org, "third")
    made = person.post("/v1/harnesses", {"name": "mine", "system_prompt": ""})
    assert made.status_code == 201, made.content
    for path in lists(task):
        page = person.get(path, data={"limit": 1}).json()
        seen = 1
        while page["next_cursor"] is not None:
            response = person.get(path, data={"limit": 1, "cursor": page["next_cursor"]})
            assert response.status_code == 200, (path, response.content)
            page = response.json()
            seen += len(page["data"])
        assert seen >= 2, path


NOT_ASCII_NUMBERS = {
    "fullwidth": "\uff11\uff10",
    "arabic_indic": "\u0661\u0660",
    "devanagari": "\u0967\u0966",
    "superscript": "\u00b9",
    "a_plus_sign": "+5",
    "a_leading_space": " 5",
    "a_trailing_space": "5 ",
    "an_underscore": "1_0",
    "a_minus_zero": "-0",
    "a_decimal": "5.0",
    "an_exponent": "1e1",
    "many_digits": "9" * 5000,
    "leading_zeros_past_the_width": "0000000005",
}


@pytest.mark.parametrize("case", list(NOT_ASCII_NUMBERS))
def test_limit_must_be_ascii_digits_on_every_list(world, task, case):
    person = world.person()
    for path in lists(task):
        response = person.get(path, data={"limit": NOT_ASCII_NUMBERS[case]})
        body = problem(response, 400, "validation_error")
        assert list(body["errors"]) == ["limit"], (path, body)


@pytest.mark.parametrize("case", ["fullwidth", "arabic_indic", "a_plus_sign", "a_leading_space"])
def test_delivery_version_must_be_ascii_digits(world, task, harness, claimed, case):
    harness.result(task.public_id, claimed["run_id"], "no_changes")
    person = world.person()
    assert person.get(f"/api/tasks/{task.public_id}/delivery?version=1").status_code == 200
    response = person.get(
        f"/api/tasks/{task.public_id}/delivery", data={"version": NOT_ASCII_NUMBERS[case]}
    )
    problem(response, 400, "validation_error")


def test_ascii_limits_are_still_read(world, task):
    person = world.person()
    world.task()
    assert len(person.get("/api/tasks?limit=1").json()["data"]) == 1
    assert len(person.get("/api/tasks?limit=").json()["data"]) == 2  # empty is absent


def test_harness_apps_list_is_paged_like_every_list(world):
    person = world.person()
    factories.make_app(world.org, "third")
    whole = person.get("/api/harness-apps")
    assert whole.status_code == 200
    body = whole.json()
    assert set(body) == {"data", "next_cursor"}
    assert [a["app_id"] for a in body["data"]] == ["builder", "rival", "third"]
    assert body["next_cursor"] is None
    first = person.get("/api/harness-apps?limit=2").json()
    assert [a["app_id"] for a in first["data"]] == ["builder", "rival"]
    rest = person.get(f"/api/harness-apps?limit=2&cursor={first['next_cursor']}").json()
    assert [a["app_id"] for a in rest["data"]] == ["third"] and rest["next_cursor"] is None
    # Another org's apps are never in it.
    assert "globex" not in json.dumps(body)
    problem(person.get("/api/harness-apps?limit=0"), 400, "validation_error")


def test_harness_apps_schema_is_the_paged_shape():
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    operation = schema["paths"]["/api/harness-apps"]["get"]
    content = operation["responses"]["200"]["content"]["application/json"]["schema"]
    ref = content["$ref"].rsplit("/", 1)[-1]
    component = schema["components"]["schemas"][ref]
    assert set(component["properties"]) == {"data", "next_cursor"}
    assert {p["name"] for p in operation["parameters"]} >= {"limit", "cursor"}
