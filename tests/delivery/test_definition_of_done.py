"""The judge's definition-of-done mention check (delivery.judge.dod_check)."""

from __future__ import annotations

from delivery.judge import DOD_METHOD, Source, dod_check, dod_sources, significant_words


def check(items, summary="", steps=()):
    return dod_check(items, dod_sources(summary, list(steps)))


def test_significant_words_drop_common_words_and_plural_s():
    assert significant_words("The response includes the build version") == [
        "response",
        "include",
        "build",
        "version",
    ]
    assert significant_words("GET /healthz answers 200") == ["get", "healthz", "answer", "200"]
    # Negations carry meaning, so they stay.
    assert significant_words("No sleep() added") == ["no", "sleep", "added"]
    assert significant_words("is it the") == []


def test_item_mentioned_in_a_summary_line_quotes_that_line():
    [item] = check(
        ["A test covers the endpoint"],
        summary="## Done\n\n- Added `/healthz`.\n- New tests cover the endpoint and its body.",
    )
    assert item == {
        "text": "A test covers the endpoint",
        "status": "mentioned",
        "evidence": "working summary, line 4: “- New tests cover the endpoint and its body.”",
    }


def test_item_mentioned_only_in_a_step_names_the_step():
    [item] = check(
        ["GET /healthz answers 200"],
        summary="Nothing relevant here.",
        steps=[(3, "Reading the code"), (5, "Checked: get /HEALTHZ answers 200 now")],
    )
    assert item["status"] == "mentioned"
    assert item["evidence"] == "step 5: “Checked: get /HEALTHZ answers 200 now”"


def test_summary_wins_over_steps_and_first_place_wins():
    [item] = check(
        ["build version"],
        summary="intro\nThe build version is returned\nbuild version again",
        steps=[(1, "build version in a step")],
    )
    assert item["evidence"].startswith("working summary, line 2:")


def test_words_spread_over_two_lines_are_not_a_mention():
    [item] = check(["response includes build version"], summary="response includes\nbuild version")
    assert item == {
        "text": "response includes build version",
        "status": "not_mentioned",
        "evidence": None,
    }


def test_partial_words_and_missing_words_are_not_mentions():
    items = check(
        ["No sleep() added", "healthz endpoint", "Docs updated"],
        summary="Removed the sleep() call; added a retry.\nhealthzendpoint is not a word match",
    )
    assert [i["status"] for i in items] == ["not_mentioned"] * 3
    assert all(i["evidence"] is None for i in items)


def test_item_without_significant_words_is_never_mentioned():
    [item] = check(["It is the"], summary="It is the best")
    assert item["status"] == "not_mentioned" and item["evidence"] is None


def test_evidence_is_cut_to_a_readable_length():
    long_line = "the build version " + "x " * 200
    [item] = check(["build version"], summary=long_line)
    assert item["status"] == "mentioned"
    quote = item["evidence"].split(": ", 1)[1]
    assert len(quote) <= 162 and quote.endswith("…”")


def test_no_items_and_no_sources():
    assert dod_check([], []) == []
    assert check(["tests pass"]) == [
        {"text": "tests pass", "status": "not_mentioned", "evidence": None}
    ]


def test_sources_keep_line_numbers_and_skip_blank_lines():
    sources = dod_sources("a\n\n  b  \n", [(9, "c")])
    assert sources == [
        Source("working summary, line 1", "a"),
        Source("working summary, line 3", "b"),
        Source("step 9", "c"),
    ]


def test_method_names_the_rule():
    assert "every significant word" in DOD_METHOD and "not verification" in DOD_METHOD
