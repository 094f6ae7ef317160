"""One log line per request, with a request id that every response returns; JSON with
ETHER_LOG_FORMAT=json; never a secret."""

from __future__ import annotations

import json
import logging
import re
import urllib.error
import urllib.request

import pytest
from websockets.sync.client import connect

from tests.helpers import Caller
from tests.servers import daphne

HEX32 = re.compile(r"[0-9a-f]{32}")


def test_a_sane_request_id_is_honoured_and_returned(world):
    response = world.person().get("/api/tasks", HTTP_X_REQUEST_ID="lb-7f3a.9:01_x")
    assert response.status_code == 200
    assert response["X-Request-ID"] == "lb-7f3a.9:01_x"


@pytest.mark.parametrize(
    "sent",
    [
        None,
        "",
        "x" * 129,
        "has space",
        "semi;colon",
        "new\\nline",
        "ünïcode",
        # Shaped like one of our secrets: it would be written to the log.
        "eth_pat_abcdefghijklmnop",
    ],
)
def test_a_missing_or_insane_request_id_is_replaced_by_a_new_one(world, sent):
    extra = {} if sent is None else {"HTTP_X_REQUEST_ID": sent}
    response = world.person().get("/api/tasks", **extra)
    assert HEX32.fullmatch(response["X-Request-ID"])


@pytest.mark.parametrize(
    ("caller", "path", "status"),
    [
        ("none", "/api/tasks", 401),
        ("person", "/api/tasks/task_nope", 404),
        ("person", "/api/no-such-route", 404),
        ("none", "/login/", 200),
        ("none", "/healthz", 200),
        ("none", "/static/web/dom.js", 200),
    ],
)
def test_every_response_carries_a_request_id(world, caller, path, status):
    client = world.person() if caller == "person" else Caller(None)
    response = client.get(path)
    assert response.status_code == status
    assert HEX32.fullmatch(response["X-Request-ID"])


def test_one_info_line_per_request_and_none_for_probes(world, caplog):
    caplog.set_level(logging.INFO, logger="ether.request")
    world.person().get("/api/tasks?limit=5", HTTP_X_REQUEST_ID="req-1")
    for probe in ("/healthz", "/readyz", "/metrics"):
        Caller(None).get(probe)
    lines = [r for r in caplog.records if r.name == "ether.request"]
    assert len(lines) == 1
    line = lines[0]
    assert line.levelno == logging.INFO
    assert line.getMessage().startswith("GET /api/tasks?limit=5 200 ")
    assert (line.route, line.status, line.request_id) == ("task-list", 200, "req-1")


def test_probes_are_logged_at_debug(db, caplog):
    caplog.set_level(logging.DEBUG, logger="ether.request")
    Caller(None).get("/healthz")
    [line] = [r for r in caplog.records if r.name == "ether.request"]
    assert line.levelno == logging.DEBUG and line.route == "healthz"


@pytest.mark.django_db(transaction=True)
def test_json_lines_carry_the_request_id_and_never_a_secret(world, tmp_path):
    with daphne(tmp_path, ETHER_LOG_FORMAT="json") as server:
        request = urllib.request.Request(
            f"{server.http}/api/tasks?limit=2",
            headers={"Authorization": f"Bearer {world.token}", "X-Request-ID": "trace-42"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.headers["X-Request-ID"] == "trace-42"
        with connect(f"{server.ws}/api/realtime?token={world.token}", open_timeout=10) as ws:
            ws.send(json.dumps({"action": "ping"}))
            ws.recv(timeout=10)
        # Secrets where they do not belong: in a query and in a path.
        for path in (f"/api/tasks?token={world.token}", f"/api/tasks/{world.key}"):
            try:
                urllib.request.urlopen(server.http + path, timeout=30).close()
            except urllib.error.HTTPError as error:
                generated = error.headers["X-Request-ID"]
                assert HEX32.fullmatch(generated)
        output = server.output()
    for secret in (world.token, world.key):
        assert secret not in output
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    requests = [line for line in lines if line["logger"] == "ether.request"]
    assert len(requests) == 3, output
    first = requests[0]
    assert first["request_id"] == "trace-42"
    assert (first["method"], first["path"], first["route"], first["status"]) == (
        "GET",
        "/api/tasks?limit=2",
        "task-list",
        200,
    )
    assert first["level"] == "INFO" and isinstance(first["duration_ms"], float)
    assert requests[1]["path"] == "/api/tasks?token=[redacted]"
    assert requests[2]["path"] == "/api/tasks/[redacted]"
    assert requests[2]["request_id"] == generated
    sockets = [line for line in lines if line["logger"] == "ether.websocket"]
    assert {line["action"] for line in sockets} >= {"WSCONNECTING", "WSCONNECT"}
    assert {line["path"] for line in sockets} == {"/api/realtime"}  # daphne logs no query
