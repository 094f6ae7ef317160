"""api.query: the query-string serializers every route parses its parameters with."""

import pytest
from django.http import QueryDict
from rest_framework import serializers

from api.query import (
    QueryCharField,
    QueryChoiceField,
    QueryFlagField,
    QueryIntegerField,
    QuerySerializer,
)


class Query(QuerySerializer):
    n = QueryIntegerField(minimum=1, maximum=99, message="Bad n.", required=False)
    flag = QueryFlagField(required=False, default=False)
    pick = QueryChoiceField(["a", "b"], required=False)
    text = QueryCharField(required=False)


def parse(qs: str) -> dict:
    query = Query(data=QueryDict(qs))
    query.is_valid(raise_exception=True)
    return dict(query.validated_data)


def errors(qs: str) -> dict:
    query = Query(data=QueryDict(qs))
    assert not query.is_valid()
    return {name: [str(m) for m in msgs] for name, msgs in query.errors.items()}


def test_empty_counts_as_absent_and_unknown_is_ignored():
    assert parse("n=&flag=&pick=&text=&limit=5&other=x") == {"flag": False}


def test_a_repeated_parameter_counts_once_the_last():
    assert parse("n=1&n=7&pick=zz&pick=b") == {"n": 7, "pick": "b", "flag": False}
    assert parse("n=5&n=") == {"flag": False}


@pytest.mark.parametrize(
    "raw", ["\uff11\uff10", "+1", " 1", "1_0", "1.0", "1e1", "0", "100", "9" * 50]
)
def test_integers_are_ascii_digits_in_range(raw):
    assert errors(f"n={raw.replace('+', '%2B')}") == {"n": ["Bad n."]}


@pytest.mark.parametrize(
    ("raw", "value"),
    [("true", True), ("YES", True), ("1", True), ("False", False), ("no", False), ("0", False)],
)
def test_flags(raw, value):
    assert parse(f"flag={raw}")["flag"] is value


@pytest.mark.parametrize("raw", ["on", "t", "2", "truthy"])
def test_other_flags_are_400(raw):
    assert errors(f"flag={raw}") == {"flag": ["Must be true or false."]}


def test_choices_are_exact_and_listed():
    assert errors("pick=A") == {"pick": ["Must be one of a, b."]}


def test_text_is_kept_as_sent():
    assert parse("text=%20x%20")["text"] == " x "


def test_a_validation_error_is_drf_s():
    with pytest.raises(serializers.ValidationError):
        Query(data=QueryDict("n=x")).is_valid(raise_exception=True)
