"""Everruns' published OpenAPI (``tests/everruns/everruns-openapi.json``, a copy of
``shared/reference/everruns-openapi.json``, kept as they publish it) as the test of every
``/v1/harness*`` response the suite produces, and the built-in definitions a
transactional test needs back.

``check_response`` finds the Everruns operation of a request (method and path; literal
routes such as ``/v1/harnesses/config`` before ``{harness_id}``) and validates the body
against that operation's schema for the status: a success must be one Everruns lists
for the operation, with its JSON schema (204: no body); an error is a problem document,
which must fit Everruns' ``ErrorResponse``. OpenAPI 3.1 schemas are JSON Schema 2020-12:
the whole document is one ``referencing`` resource, so its ``#/components/…`` refs
resolve, and formats (``date-time``) are checked.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

from django.apps import apps as django_apps
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SPEC_PATH = Path(__file__).resolve().parent / "everruns" / "everruns-openapi.json"
SPEC_URI = "urn:everruns-openapi"
PREFIX = re.compile(r"^/v1/harness")


@cache
def spec() -> dict[str, Any]:
    return json.loads(SPEC_PATH.read_text(encoding="utf-8"))


@cache
def registry() -> Registry:
    return Registry().with_resource(SPEC_URI, Resource(spec(), specification=DRAFT202012))


def _pointer(*parts: str) -> str:
    return "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


@cache
def _templates() -> list[tuple[re.Pattern[str], str]]:
    """Everruns' ``/v1/harness*`` paths as regexes, literal ones first."""
    paths = [p for p in spec()["paths"] if PREFIX.match(p)]
    paths.sort(key=lambda p: ("{" in p, p))
    return [(re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", p) + "$"), p) for p in paths]


def everruns_path(path: str) -> str | None:
    return next((template for regex, template in _templates() if regex.match(path)), None)


@cache
def _validator(pointer: str) -> Draft202012Validator:
    return Draft202012Validator(
        {"$ref": f"{SPEC_URI}#/{pointer}"},
        registry=registry(),
        format_checker=Draft202012Validator.FORMAT_CHECKER,
    )


def check_response(method: str, path: str, status: int, content: bytes, content_type: str) -> int:
    """Raises ``AssertionError`` when the response does not fit Everruns' schema; returns
    1 when it was checked, 0 for a path Everruns does not define."""
    template = everruns_path(path)
    if template is None:
        return 0
    where = f"{method} {path} → {status}"
    operation = spec()["paths"][template].get(method.lower())
    if operation is None:
        # A method Everruns does not serve there: only a problem document may answer.
        assert status in (401, 403, 405, 429, 503), f"{where}: not an Everruns operation"
        return _check_error(where, content, content_type)
    if status >= 400:
        return _check_error(where, content, content_type)
    responses = operation["responses"]
    assert str(status) in responses, f"{where}: Everruns answers {sorted(responses)}"
    schema = responses[str(status)].get("content", {}).get("application/json", {}).get("schema")
    if schema is None:
        assert content == b"", f"{where}: Everruns sends no body, got {content[:200]!r}"
        return 1
    assert content_type.startswith("application/json"), f"{where}: {content_type}"
    pointer = _pointer(
        "paths", template, method.lower(), "responses", str(status), "content", "application/json"
    )
    _assert_valid(where, _validator(pointer + "/schema"), json.loads(content))
    return 1


def _check_error(where: str, content: bytes, content_type: str) -> int:
    assert content_type.startswith("application/problem+json"), f"{where}: {content_type}"
    _assert_valid(where, _validator("components/schemas/ErrorResponse"), json.loads(content))
    return 1


def _assert_valid(where: str, validator: Draft202012Validator, body: Any) -> None:
    errors = sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))
    assert not errors, f"{where} does not fit Everruns' schema:\n" + "\n".join(
        f"  at {'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message[:300]}"
        for e in errors[:10]
    )


def ensure_built_ins() -> None:
    """A transactional test starts after another one flushed the tables, data migrations'
    rows included: puts the built-in ``generic`` back, as its migrations leave it."""
    from importlib import import_module

    from tasks.models import Harness

    if Harness.objects.filter(org__isnull=True, name="generic").exists():
        return
    import_module("tasks.migrations.0004_built_in_generic_harness").create_generic(
        django_apps, None
    )
    # The later migrations' rewrites, on this one row (not idempotent on others).
    Harness.objects.filter(org__isnull=True, name="generic").update(
        network_access={"allowed": [], "blocked": ["169.254.169.254", "metadata.google.internal"]}
    )
