"""A corpus of hostile request bodies and ids, sent to every write route of the served
schema: each is a clean 4xx problem document and nothing is stored."""

from __future__ import annotations

import pytest
from django.conf import settings

from tests.helpers import stored
from tests.reliability.routes import ROUTES, WRITES, Route, caller_for, real_ids

LIMIT = settings.ETHER_MAX_BODY_BYTES

BODIES: dict[str, tuple[bytes, str, set[str]]] = {
    # name: (raw body, content type, acceptable codes)
    "over-limit": (
        b'{"run_id": "' + b"a" * (LIMIT + 10) + b'"}',
        "application/json",
        {"payload_too_large"},
    ),
    "deep-nesting": (b"[" * 100_000 + b"]" * 100_000, "application/json", {"malformed_json"}),
    "nesting-65": (
        b'{"a": ' + b"[" * 65 + b"]" * 65 + b"}",
        "application/json",
        {"malformed_json"},
    ),
    "huge-integer": (
        b'{"lease_epoch": ' + b"9" * 5000 + b"}",
        "application/json",
        {"malformed_json"},
    ),
    "float-overflow": (b'{"lease_epoch": 1e400}', "application/json", {"malformed_json"}),
    "nan": (b'{"lease_epoch": NaN}', "application/json", {"malformed_json"}),
    "infinity": (b'{"lease_epoch": -Infinity}', "application/json", {"malformed_json"}),
    "duplicate-keys": (
        b'{"answer": "yes", "answer": "no"}',
        "application/json",
        {"malformed_json"},
    ),
    "text-plain": (b'{"answer": "yes"}', "text/plain", {"unsupported_media_type"}),
    "form": (b"answer=yes", "application/x-www-form-urlencoded", {"unsupported_media_type"}),
    "invalid-utf8": (b'{"answer": "\xff\xfe\xc3("}', "application/json", {"malformed_json"}),
    "latin1-declared": (
        '{"answer": "caf\u00e9"}'.encode("utf-16"),
        "application/json",
        {"malformed_json"},
    ),
    "escaped-nul": (b'{"answer": "a\\u0000b"}', "application/json", {"malformed_json"}),
    "raw-nul": (b'{"answer": "a\x00b"}', "application/json", {"malformed_json"}),
    "nul-in-key": (b'{"ans\\u0000wer": "x"}', "application/json", {"malformed_json"}),
    "lone-surrogate": (b'{"answer": "\\udc00"}', "application/json", {"malformed_json"}),
    "truncated": (b'{"answer": "ye', "application/json", {"malformed_json"}),
    "not-an-object": (b"[1, 2]", "application/json", {"validation_error"}),
}


def _assert_clean_refusal(response, route: Route, codes: set[str]) -> None:
    assert 400 <= response.status_code < 500, (str(route), response.status_code)
    assert response["Content-Type"].startswith("application/problem+json"), str(route)
    body = response.json()
    assert body["status"] == response.status_code
    # A body is read only once the caller and the object are known: a 404 of a route that
    # looks its object up first is as clean a refusal, and names no internals.
    assert body["code"] in codes | {"not_found"}, (str(route), body)
    assert "Traceback" not in body["detail"] and "sqlite" not in body["detail"].lower()


@pytest.mark.parametrize("name", sorted(BODIES))
def test_every_write_route_refuses_the_bad_body_and_stores_nothing(world, name):
    raw, content_type, codes = BODIES[name]
    ids = real_ids(world)
    before = stored()
    assert len(WRITES) >= 15
    for route in WRITES:
        caller = caller_for(route, world)
        response = caller.method(
            route.method,
            route.path(ids),
            data=raw,
            content_type=content_type,
            HTTP_IDEMPOTENCY_KEY=f"bad-{name}-{route}",
        )
        _assert_clean_refusal(response, route, codes)
    assert stored() == before


# Ids that look like ours to a person but are other strings to the server.
def _fullwidth(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if c.isdigit() else c for c in text)


ID_TRICKS = {
    "fullwidth-digits": _fullwidth,
    "rtl-mark": lambda i: i[:6] + "\u200f" + i[6:],
    "rtl-override": lambda i: "\u202e" + i,
    "zero-width-space": lambda i: i + "\u200b",
    "zero-width-joiner": lambda i: i[:4] + "\u200d" + i[4:],
    "cyrillic-a-homoglyph": lambda i: i.replace("a", "\u0430", 1),
    "cyrillic-o-homoglyph": lambda i: i.replace("o", "\u043e", 1),
    "uppercase-hex": lambda i: i.split("_", 1)[0] + "_" + i.split("_", 1)[-1].upper(),
    "trailing-newline": lambda i: i + "%0A",
    "percent-nul": lambda i: i + "%00",
    "combining-mark": lambda i: i + "\u0301",
}


@pytest.mark.parametrize("trick", sorted(ID_TRICKS))
def test_tricked_ids_in_paths_are_404_on_every_route_and_store_nothing(world, trick):
    ids = real_ids(world)
    tricked = {name: ID_TRICKS[trick](value) for name, value in ids.items()}
    before = stored()
    for route in ROUTES:
        if not route.params:
            continue
        if route.path(tricked) == route.path(ids):
            continue  # the trick found nothing to change in these ids (no "o" in "task_")
        caller = caller_for(route, world)
        extra = {"content_type": "application/json", "data": b"{}"} if route in WRITES else {}
        # task_id in the query too: the context routes need it before they look up a doc.
        path = route.path(tricked) + f"?task_id={ids['task_id']}"
        response = caller.method(route.method, path, **extra)
        # A write may check its body before its object; either way nothing is found.
        expected = {404, 400} if route in WRITES else {404}
        assert response.status_code in expected, (str(route), trick, response.content[:300])
        assert response.json()["code"] in {"not_found", "validation_error"}
    assert stored() == before


@pytest.mark.parametrize("trick", sorted(ID_TRICKS))
def test_tricked_ids_in_bodies_are_refused(world, trick):
    """``run_id`` and ``app_id`` in bodies: a malformed run is 400, an app id that is not
    the key's own is 403; neither claims nor writes."""
    ids = real_ids(world)
    harness = world.harness()
    task_id = ids["task_id"]
    before = stored()
    run_id = ID_TRICKS[trick](ids["run_id"])
    if run_id == ids["run_id"]:
        pytest.skip("the trick changes nothing in this id")
    step = harness.step(task_id, run_id)
    assert step.status_code in {400, 409}, step.content
    assert stored() == before
    other = world.task()
    before = stored()
    claim = harness.post(
        harness.url(other.public_id, "claim"), {"app_id": ID_TRICKS[trick](world.app.app_id)}
    )
    if ID_TRICKS[trick](world.app.app_id) != world.app.app_id:
        assert claim.status_code in {400, 403}, claim.content
        assert stored() == before
