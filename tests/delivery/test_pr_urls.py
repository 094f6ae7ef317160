"""Issue 12, item 4: a PR URL is read as a browser reads it (WHATWG), or refused.

``urllib.parse`` read ``https://evil.example\\@github.com/acme/widgets/pull/5`` as a
github.com URL; every browser goes to ``evil.example``. These requests go through the
public result route and check the status and that nothing was stored; the accepted ones
check that what is stored and shown is ada's normalized href.
"""

from __future__ import annotations

from typing import Any

import pytest

from delivery.links import UnsafeLink, link_parse, safe_href
from delivery.models import Delivery
from tasks.models import Event, Result, Run, RunStatus, TaskStatus
from tests.helpers import problem, stored


def pr(task: Any, url: str, number: int = 5) -> dict[str, Any]:
    return {"number": number, "branch": "ether/fix", "url": url}


def repo(task: Any) -> str:
    return task.repo.full_name  # "acme/widgets"-like


# Each of these reaches the judge as a string; each would link somewhere else, or read
# differently in a browser than in the judge, so each is 422 out_of_scope.
REFUSED: dict[str, Any] = {
    "backslash_before_userinfo": lambda t: f"https://evil.example\\@github.com/{repo(t)}/pull/5",
    "backslash_as_path_separator": lambda t: f"https://github.com\\{repo(t)}/pull/5",
    "backslash_inside_the_path": lambda t: f"https://github.com/{repo(t)}\\..\\..\\x/pull/5",
    "userinfo": lambda t: f"https://user:pass@github.com/{repo(t)}/pull/5",
    "empty_userinfo": lambda t: f"https://@github.com/{repo(t)}/pull/5",
    "host_as_userinfo": lambda t: f"https://github.com@evil.example/{repo(t)}/pull/5",
    "a_tab_inside": lambda t: f"https://github.com/{repo(t)}/pu\tll/5",
    "a_newline_inside": lambda t: f"https://github.com/{repo(t)}/pull/\n5",
    "a_tab_in_the_host": lambda t: f"https://git\thub.com/{repo(t)}/pull/5",
    "a_leading_space": lambda t: f" https://github.com/{repo(t)}/pull/5",
    "a_trailing_newline": lambda t: f"https://github.com/{repo(t)}/pull/5\n",
    "a_trailing_dot_host": lambda t: f"https://github.com./{repo(t)}/pull/5",
    "a_leading_dot_host": lambda t: f"https://.github.com/{repo(t)}/pull/5",
    "an_idn_look_alike": lambda t: f"https://g\u0456thub.com/{repo(t)}/pull/5",  # Cyrillic i
    "a_punycode_look_alike": lambda t: f"https://xn--gthub-n4a.com/{repo(t)}/pull/5",
    "a_fullwidth_host": lambda t: (
        f"https://\uff47\uff49\uff54\uff48\uff55\uff42.com/{repo(t)}/pull/5"
    ),
    "an_encoded_slash": lambda t: f"https://github.com/{repo(t).replace('/', '%2f')}/pull/5",
    "an_encoded_upper_slash": lambda t: f"https://github.com/{repo(t).replace('/', '%2F')}/pull/5",
    "an_encoded_backslash": lambda t: f"https://github.com/{repo(t).replace('/', '%5c')}/pull/5",
    "encoded_dot_segments": lambda t: f"https://github.com/{repo(t)}/pull/5/%2e%2e/6",
    "an_encoded_digit": lambda t: f"https://github.com/{repo(t)}/pull/%35",
    "a_dot_dot_segment_back_into_scope": lambda t: (
        f"https://github.com/evil/x/../../{repo(t)}/pull/5"
    ),
    "a_dot_dot_segment_out_of_scope": lambda t: f"https://github.com/{repo(t)}/../../evil/x/pull/5",
    "a_dot_segment": lambda t: f"https://github.com/{repo(t)}/./pull/5",
    "another_port": lambda t: f"https://github.com:8443/{repo(t)}/pull/5",
    "a_zero_padded_default_port": lambda t: f"https://github.com:0443/{repo(t)}/pull/5",
    "an_empty_port": lambda t: f"https://github.com:/{repo(t)}/pull/5",
    "plain_http_for_an_https_repository": lambda t: f"http://github.com/{repo(t)}/pull/5",
    "javascript": lambda t: "javascript:alert(document.domain)//github.com/acme/widgets/pull/5",
    "javascript_with_slashes": lambda t: f"javascript://github.com/{repo(t)}/pull/5",
    "data": lambda t: "data:text/html,<script>alert(1)</script>",
    "protocol_relative": lambda t: f"//github.com/{repo(t)}/pull/5",
    "backslash_protocol_relative": lambda t: f"\\\\github.com/{repo(t)}/pull/5",
    "no_slashes_after_the_scheme": lambda t: f"https:github.com/{repo(t)}/pull/5",
    "three_slashes": lambda t: f"https:///github.com/{repo(t)}/pull/5",
    "a_hex_ipv4_host": lambda t: f"https://0x7f.1/{repo(t)}/pull/5",
    "an_ipv6_host": lambda t: f"https://[::1]/{repo(t)}/pull/5",
    "a_fragment": lambda t: f"https://github.com/{repo(t)}/pull/5#x",
    "an_empty_query": lambda t: f"https://github.com/{repo(t)}/pull/5?",
    "an_unclosed_bracket": lambda t: f"https://[::1/{repo(t)}/pull/5",
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_ambiguous_pr_url_is_422_out_of_scope_and_stores_nothing(task, harness, claimed, case):
    run_id = claimed["run_id"]
    before = stored()
    url = REFUSED[case](task)
    response = harness.result(task.public_id, run_id, "submitted", artifact={"pr": pr(task, url)})
    body = problem(response, 422, "out_of_scope")
    assert any("artifact.pr.url" in reason for reason in body["errors"]["artifact.pr"]), body
    assert stored() == before
    assert not Result.objects.exists()
    assert not Delivery.objects.exists()
    assert not Event.objects.filter(task=task, name="task.delivered").exists()
    assert Run.objects.get(public_id=run_id).status == RunStatus.LIVE
    task.refresh_from_db()
    assert task.status == TaskStatus.IN_PROGRESS


def test_a_nul_in_the_pr_url_is_400_and_stores_nothing(task, harness, claimed):
    before = stored()
    url = f"https://github.com/{repo(task)}/pull/5\x00"
    response = harness.result(
        task.public_id, claimed["run_id"], "submitted", artifact={"pr": pr(task, url)}
    )
    problem(response, 400, "malformed_json")
    assert stored() == before


def test_the_reported_backslash_url_is_refused_with_its_reason(task, harness, claimed):
    url = "https://evil.example\\@github.com/acme/widgets/pull/5"
    task.repo.full_name, task.repo.url = "acme/widgets", "https://github.com/acme/widgets"
    task.repo.save()
    response = harness.result(
        task.public_id, claimed["run_id"], "submitted", artifact={"pr": pr(task, url)}
    )
    body = problem(response, 422, "out_of_scope")
    assert "backslash" in body["detail"], body
    assert not Result.objects.exists()


# Accepted, and stored (and shown) as the browser reads them.
NORMALIZED = {
    "upper_case_scheme_and_host": (
        lambda t: f"HTTPS://GitHub.COM/{repo(t)}/pull/5",
        lambda t: f"https://github.com/{repo(t)}/pull/5",
    ),
    "the_default_port": (
        lambda t: f"https://github.com:443/{repo(t)}/pull/5",
        lambda t: f"https://github.com/{repo(t)}/pull/5",
    ),
    "already_plain": (
        lambda t: f"https://github.com/{repo(t)}/pull/5",
        lambda t: f"https://github.com/{repo(t)}/pull/5",
    ),
}


@pytest.mark.parametrize("case", list(NORMALIZED))
def test_accepted_pr_url_is_stored_and_shown_as_adas_href(task, harness, claimed, case):
    sent, expected = (f(task) for f in NORMALIZED[case])
    artifact = {"pr": pr(task, sent), "commit": "abc123"}
    response = harness.result(task.public_id, claimed["run_id"], "submitted", artifact=artifact)
    assert response.status_code == 200, response.content
    result = Result.objects.get(task=task)
    assert result.artifact == {"pr": {**artifact["pr"], "url": expected}, "commit": "abc123"}
    [delivery] = Delivery.objects.filter(task=task)
    blocks = {b["type"]: b for b in delivery.blocks}
    assert blocks["hero"]["pr"]["url"] == expected
    [open_pr] = [a for a in blocks["actions"]["actions"] if a["kind"] == "open_pr"]
    assert open_pr["url"] == expected
    timeline = Event.objects.get(task=task, name="task.timeline", payload__kind="result")
    assert timeline.payload["artifact"]["pr"]["url"] == expected
    # A retry of the same body is the same result, replayed, not a second one.
    again = harness.result(task.public_id, claimed["run_id"], "submitted", artifact=artifact)
    assert again.status_code == 200 and again["Idempotent-Replayed"] == "true"
    assert Result.objects.count() == 1


def test_a_repository_url_that_is_not_a_plain_link_is_not_linked(task, harness, claimed):
    task.repo.url = "https://github.com\\@evil.example/acme/widgets"
    task.repo.save()
    response = harness.result(
        task.public_id,
        claimed["run_id"],
        "submitted",
        artifact={"pr": pr(task, f"https://github.com/{repo(task)}/pull/5")},
    )
    # Such a repository matches no PR at all, and its URL is never a link.
    problem(response, 422, "out_of_scope")
    assert safe_href(task.repo.url) is None


@pytest.mark.parametrize(
    "raw",
    ["https://evil.example\\@github.com/a/b", "https://a.b/%2e%2e/", "https://a.b/x/../y", 42],
)
def test_link_parse_refuses_what_browsers_rewrite(raw):
    with pytest.raises(UnsafeLink):
        link_parse(raw)


def test_link_parse_keeps_what_browsers_keep():
    link = link_parse("HTTPS://Example.COM:8443/a/b/")
    assert (link.href, link.scheme, link.host, link.path) == (
        "https://example.com:8443/a/b/",
        "https",
        "example.com:8443",
        "/a/b/",
    )
