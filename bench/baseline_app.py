"""The baseline the benchmarks compare Ether with: the same work with no framework.

A bare ASGI app, served by the same daphne as Ether so that only the framework differs:
- ``POST /steps/{topic}`` inserts the step as a row (sqlite3 or psycopg, directly) and
  publishes its frame: in-process, or on Redis (redis-py pub/sub) when
  ``BASELINE_REDIS_URL`` is set, each process then sending it to its own sockets;
- ``/ws`` is a WebSocket that takes ``{"action": "subscribe", "topics": [...]}`` and
  gets every frame of those topics.

No authentication, no lease check, no gapless per-topic seq, no replay: what is left is
the floor any server doing this job stands on. ``BASELINE_DB`` is a SQLite path or a
Postgres URL.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import time
from collections.abc import Awaitable, Callable
from typing import Any

Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]

DB = os.environ.get("BASELINE_DB", ":memory:")
REDIS_URL = os.environ.get("BASELINE_REDIS_URL", "")
# Redis pub/sub channels are global to a Redis server (not per db): a benchmark that may
# run beside another one names its own.
CHANNEL = os.environ.get("BASELINE_CHANNEL", "baseline.steps")

subscribers: dict[str, set[Send]] = {}
_state: dict[str, Any] = {}


def _db() -> Any:
    """One connection per process; the insert is a few hundred microseconds, so it runs
    on the event loop as a minimal server would."""
    if "db" not in _state:
        if DB.startswith("postgres"):
            import psycopg

            db = psycopg.connect(DB, autocommit=True)
            db.execute(
                "CREATE TABLE IF NOT EXISTS baseline_steps (id bigserial PRIMARY KEY, "
                "topic text NOT NULL, body text NOT NULL, created_at timestamptz DEFAULT now())"
            )
        else:
            db = sqlite3.connect(DB, isolation_level=None, timeout=5)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute(
                "CREATE TABLE IF NOT EXISTS baseline_steps (id integer PRIMARY KEY, "
                "topic text NOT NULL, body text NOT NULL, created_at real)"
            )
        _state["db"] = db
    return _state["db"]


def insert(topic: str, body: str) -> int:
    db = _db()
    if DB.startswith("postgres"):
        row = db.execute(
            "INSERT INTO baseline_steps (topic, body) VALUES (%s, %s) RETURNING id", [topic, body]
        ).fetchone()
        return int(row[0])
    cursor = db.execute(
        "INSERT INTO baseline_steps (topic, body, created_at) VALUES (?, ?, ?)",
        [topic, body, time.time()],
    )
    return int(cursor.lastrowid or 0)


async def deliver(topic: str, text: str) -> None:
    for send in list(subscribers.get(topic, ())):
        try:
            await send({"type": "websocket.send", "text": text})
        except Exception:
            subscribers.get(topic, set()).discard(send)


async def _redis() -> Any:
    """The process's publisher, and a listener task that fans frames out locally."""
    if "redis" not in _state:
        import redis.asyncio as redis

        client = redis.Redis.from_url(REDIS_URL)
        pubsub = client.pubsub()
        await pubsub.subscribe(CHANNEL)
        _state["redis"] = client
        _state["listener"] = asyncio.get_running_loop().create_task(_listen(pubsub))
    return _state["redis"]


async def _listen(pubsub: Any) -> None:
    async for message in pubsub.listen():
        if message.get("type") != "message":
            continue
        data = message["data"].decode()
        topic, _, text = data.partition("\n")
        await deliver(topic, text)


async def http(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    path = scope["path"]
    if scope["method"] == "POST" and path.startswith("/steps/"):
        topic = path[len("/steps/") :]
        step = json.loads(body or b"{}")
        seq = insert(topic, json.dumps(step))
        frame = json.dumps({"type": "step", "topic": topic, "seq": seq, **step})
        if REDIS_URL:
            await (await _redis()).publish(CHANNEL, f"{topic}\n{frame}")
        else:
            await deliver(topic, frame)
        status, out = 201, json.dumps({"seq": seq}).encode()
    elif path in ("/ready", "/readyz"):  # /readyz: the load balancer's health check
        if REDIS_URL:
            await _redis()
        _db()
        status, out = 200, b'{"ok": true}'
    else:
        status, out = 404, b'{"detail": "not found"}'
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": out})


async def websocket(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    mine: list[str] = []
    try:
        while True:
            message = await receive()
            if message["type"] == "websocket.connect":
                if REDIS_URL:
                    await _redis()
                await send({"type": "websocket.accept"})
            elif message["type"] == "websocket.receive":
                frame = json.loads(message.get("text") or "{}")
                if frame.get("action") == "subscribe":
                    for topic in frame.get("topics", []):
                        subscribers.setdefault(topic, set()).add(send)
                        mine.append(topic)
                    reply = {"type": "subscribed", "topics": frame.get("topics", [])}
                    await send({"type": "websocket.send", "text": json.dumps(reply)})
            elif message["type"] == "websocket.disconnect":
                return
    finally:
        for topic in mine:
            subscribers.get(topic, set()).discard(send)


async def application(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    if scope["type"] == "http":
        await http(scope, receive, send)
    elif scope["type"] == "websocket":
        await websocket(scope, receive, send)
