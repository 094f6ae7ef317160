"""Tenancy on every route of the schema: globex's credentials on acme's ids are answered
404 as if nothing existed, lists show none of acme's data, and nothing is stored."""

from __future__ import annotations

import json

from tasks.webhooks.models import WebhookEndpoint
from tests.helpers import stored
from tests.reliability.routes import ROUTES, STREAMS, WRITES, caller_for, real_ids

PLAUSIBLE_BODIES = {
    "claim": {"app_id": "builder"},
    "heartbeat": {},
    "steps": {"phase": "coding_agent", "user_message": "hi"},
    "interrupt": {"question": "Which DB?"},
    "result": {"status": "no_changes", "agent_status": "x", "no_changes_reason": "y"},
    "answer": {"answer": "yes"},
    "feedback": {"rating": "up"},
    "copy": {"name": "stolen"},
}


def _secrets_of(world, ids: dict[str, str]) -> list[str]:
    return [*ids.values(), world.key, world.token, "acme/", "Fix the flaky test"]


def test_every_route_answers_another_orgs_ids_with_404_and_leaks_nothing(world):
    ids = real_ids(world)
    leaks = _secrets_of(world, {k: v for k, v in ids.items() if k != "app_id"})
    before = stored()
    checked = 0
    for route in ROUTES:
        if not route.params:
            continue
        caller = caller_for(route, world, outsider=True)
        body = dict(PLAUSIBLE_BODIES.get(route.template.rsplit("/", 1)[-1], {}))
        if "run_id" in route.template or route.harness:
            body.setdefault("run_id", ids["run_id"])
        extra = {"content_type": "application/json", "data": json.dumps(body)}
        path = route.path(ids) + f"?task_id={ids['task_id']}"
        response = caller.method(route.method, path, **(extra if route in WRITES else {}))
        # The app id "builder" exists in both orgs: globex reaching its own app is no leak.
        if route.template == "/api/harness-apps/{app_id}" and response.status_code < 300:
            assert response.json()["app_id"] == "builder"
            continue
        if route.template.startswith("/api/harness-apps/{app_id}/") and response.status_code < 300:
            # Its own app's webhook secret or test message; acme's app is untouched.
            assert not WebhookEndpoint.objects.filter(app__org=world.org).exists()
            continue
        assert response.status_code in {400, 404}, (str(route), response.content[:300])
        if response.status_code == 400:
            # A write may check its body first; the detail names no acme object.
            assert route in WRITES, str(route)
        text = response.content.decode()
        sent = path + json.dumps(body)  # an id the caller sent may be echoed back
        assert not [s for s in leaks if s in text and s not in sent], (str(route), text[:300])
        checked += 1
    assert checked >= 20
    assert stored() == before


def test_lists_show_only_the_callers_org(world):
    ids = real_ids(world)
    leaks = _secrets_of(world, {k: v for k, v in ids.items() if k != "app_id"})
    for route in ROUTES:
        if route.params or route.method != "GET" or route.template in STREAMS:
            continue  # the org's activity stream: tests/tasks/test_sse_and_tickets.py
        caller = caller_for(route, world, outsider=True)
        path = route.template + f"?task_id={ids['task_id']}"
        response = caller.get(path)
        assert response.status_code in {200, 400, 404}, (str(route), response.status_code)
        text = response.content.decode()
        assert not [s for s in leaks if s in text and s not in path], (str(route), text[:300])


def test_harness_key_and_access_token_are_not_interchangeable_across_orgs(world):
    ids = real_ids(world)
    outsider = world.outsider_harness()
    before = stored()
    for route in ROUTES:
        if not route.harness or not route.params:
            continue
        # A person's token (of either org) on a harness route is 401, never a lookup.
        person = world.outsider()
        response = person.method(route.method, route.path(ids))
        assert response.status_code == 401, str(route)
    assert outsider.claim(ids["task_id"]).status_code == 404
    assert stored() == before


def test_events_of_another_org_are_not_served(world):
    ids = real_ids(world)
    response = world.outsider().get(f"/api/tasks/{ids['task_id']}/events")
    assert response.status_code == 404
    timeline = world.outsider().get(f"/api/tasks/{ids['task_id']}/timeline")
    assert timeline.status_code == 404
    # The other org's own activity topic is empty of acme's events.
    from tasks.models import Event

    assert not Event.objects.filter(topic__startswith="activity/globex").exists() or all(
        ids["task_id"] not in json.dumps(e.payload)
        for e in Event.objects.filter(topic__startswith="activity/globex")
    )
