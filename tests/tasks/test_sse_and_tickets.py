"""The SSE fallback, realtime tickets and the client config route."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient
from django.utils import timezone

from accounts.credentials import hash_secret
from tasks.models import RealtimeTicket
from tasks.realtime import hub
from tasks.services.tickets import ticket_create, ticket_spend
from tests import factories
from tests.helpers import Caller, problem

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("close_worker_connections"),
]


def parse(chunks: str) -> list[dict]:
    events = []
    for block in chunks.split("\n\n"):
        lines = dict(
            line.split(": ", 1) for line in block.splitlines() if line and not line.startswith(":")
        )
        if "id" in lines:
            events.append(
                {"id": int(lines["id"]), "event": lines["event"], **json.loads(lines["data"])}
            )
    return events


async def read_events(response, count: int) -> list[dict]:
    text = ""
    async for chunk in response.streaming_content:
        text += chunk.decode() if isinstance(chunk, bytes) else chunk
        if len(parse(text)) >= count:
            break
    # As the ASGI handler does when a client goes away: closing fires request_finished in
    # the view's thread, which closes its database connection.
    await sync_to_async(response.close, thread_sensitive=True)()
    return parse(text)[:count]


@pytest.fixture
def fast_poll(settings):
    settings.ETHER_SSE_POLL_SECONDS = 0.05


@pytest.mark.parametrize("how", ["header", "query"])
async def test_sse_resumes_after_last_event_id_or_after(world, task, claimed, fast_poll, how):
    headers = {"Authorization": f"Bearer {world.token}"}
    url = f"/api/tasks/{task.public_id}/events"
    if how == "header":
        headers["Last-Event-ID"] = "1"
    else:
        url += "?after=1"
    response = await AsyncClient().get(url, headers=headers)
    [event] = await read_events(response, 1)
    assert event["id"] == 2 and event["kind"] == "claim"


async def test_sse_refusals_are_problem_documents(world, task):
    url = f"/api/tasks/{task.public_id}/events"
    problem(await AsyncClient().get(url), 401, "not_authenticated")
    outsider = {"Authorization": f"Bearer {world.outsider_token}"}
    problem(await AsyncClient().get(url, headers=outsider), 404, "not_found")
    mine = {"Authorization": f"Bearer {world.token}"}
    client = AsyncClient()
    problem(await client.get(url + "?after=-3", headers=mine), 400, "validation_error")
    problem(await client.get(url + "?after=x", headers=mine), 400, "validation_error")
    # int() reads each of these as a number; a seq is ASCII digits only.
    for forged in ("%EF%BC%93", "+3", "%203", "1_0"):
        problem(await client.get(url + f"?after={forged}", headers=mine), 400, "validation_error")
    signed = {**mine, "Last-Event-ID": "+3"}
    problem(await client.get(url, headers=signed), 400, "validation_error")
    problem(await client.get("/api/tasks/task_nothex/events", headers=mine), 404, "not_found")


async def test_activity_sse_streams_the_viewers_org_grid(world, task, claimed, fast_poll):
    """The grid's fallback: ``activity/{org}`` of the caller's own org, resumable like a
    task's stream; nobody names the org, so another org's grid cannot be asked for."""
    mine = {"Authorization": f"Bearer {world.token}"}
    response = await AsyncClient().get("/api/activity/events", headers=mine)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/event-stream"
    events = await read_events(response, 2)
    assert [e["type"] for e in events] == ["activity.list_updated"] * 2
    assert {e["topic"] for e in events} == {f"activity/{world.org.slug}"}
    assert [e["id"] for e in events] == [1, 2]
    assert events[-1]["status"] == "in_progress" and events[-1]["task"]["id"] == task.public_id
    resumed = await AsyncClient().get("/api/activity/events?after=1", headers=mine)
    [event] = await read_events(resumed, 1)
    assert event["id"] == 2
    # Another org's member gets their own org's grid, never acme's.
    their_task = await sync_to_async(factories.make_task)(
        world.outsider_org, owner=world.outsider_user
    )
    outsider = {"Authorization": f"Bearer {world.outsider_token}"}
    theirs = await AsyncClient().get("/api/activity/events?after=0", headers=outsider)
    [event] = await read_events(theirs, 1)
    assert event["topic"] == f"activity/{world.outsider_org.slug}"
    assert event["task"]["id"] == their_task.public_id
    problem(await AsyncClient().get("/api/activity/events"), 401, "not_authenticated")
    harness_key = {"Authorization": f"Bearer {world.key}"}
    refused = await AsyncClient().get("/api/activity/events", headers=harness_key)
    assert refused.status_code in (401, 403)
    problem(
        await AsyncClient().get("/api/activity/events?after=x", headers=mine),
        400,
        "validation_error",
    )


async def test_config_follows_the_prefer_websocket_setting(db, settings):
    settings.ETHER_REALTIME_PREFER_WEBSOCKET = False
    response = await AsyncClient().get("/api/config")
    assert response.json()["realtime"]["prefer_websocket"] is False


async def test_config_tells_clients_to_prefer_the_websocket(db):
    response = await AsyncClient().get("/api/config")
    assert response.status_code == 200
    assert response.json() == {
        "realtime": {
            "prefer_websocket": True,
            "websocket_url": "ws://testserver/api/realtime",
            "sse_url_template": "http://testserver/api/tasks/{task_id}/events",
            "activity_sse_url": "http://testserver/api/activity/events",
        }
    }


def test_ticket_route_issues_a_hashed_short_lived_ticket(world):
    response = world.person().post("/api/realtime/tickets")
    assert response.status_code == 201
    body = response.json()
    assert body["ticket"].startswith("eth_tkt_") and body["expires_at"].endswith("Z")
    stored = RealtimeTicket.objects.get()
    assert stored.ticket_hash != body["ticket"] and body["ticket"] not in stored.ticket_hash
    assert 25 <= (stored.expires_at - stored.created_at).total_seconds() <= 30
    assert hub.viewer_for_secret(body["ticket"]).user == world.user
    assert hub.viewer_for_secret(body["ticket"]) is None  # single use
    by_app = world.harness().post("/api/realtime/tickets")
    assert by_app.status_code == 201  # a harness app's ticket (test_realtime_harness.py)
    assert hub.viewer_for_secret(by_app.json()["ticket"]).app == world.app
    problem(Caller("eth_app_unknown").post("/api/realtime/tickets"), 401, "not_authenticated")


def test_ticket_spend_takes_a_ticket_once_and_never_an_expired_one(world):
    fresh = ticket_create(user=world.user)
    stale = ticket_create(user=world.user)
    RealtimeTicket.objects.filter(ticket_hash=hash_secret(stale.ticket)).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert ticket_spend(secret=fresh.ticket).user == world.user
    assert ticket_spend(secret=fresh.ticket) is None
    assert ticket_spend(secret=stale.ticket) is None
    assert ticket_spend(secret="eth_tkt_unknown") is None
    used = dict(RealtimeTicket.objects.values_list("ticket_hash", "used_at"))
    assert used[hash_secret(fresh.ticket)] is not None
    assert used[hash_secret(stale.ticket)] is None  # refused, not spent
