"""Postgres connections stay bounded under concurrent requests on a real daphne.

Daphne runs each request's sync code in a thread of its own; with persistent connections
(``CONN_MAX_AGE``) each concurrent request left a connection open after its thread was
gone, until Postgres refused new clients ("too many clients already") and every request
answered 503 (found by bench/bench_contention.py). The pool bounds them per process.
"""

from __future__ import annotations

import concurrent.futures
import http.client

import pytest
from django.db import connection

from tests.servers import daphne

pytestmark = pytest.mark.django_db(transaction=True)


def _open_connections(name: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s", [name])
        return cursor.fetchone()[0]


def _get(port: int, path: str, token: str) -> int:
    client = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        client.request("GET", path, headers={"Authorization": f"Bearer {token}"})
        return client.getresponse().status
    finally:
        client.close()


def test_bursts_of_concurrent_requests_do_not_pile_up_postgres_connections(world, task, tmp_path):
    if connection.vendor != "postgresql":
        pytest.skip("connection pooling is a Postgres matter")
    name = connection.settings_dict["NAME"]
    # This test process keeps a pool of its own (earlier tests may have filled it): only
    # what the server adds counts.
    before = _open_connections(name)
    with daphne(tmp_path, ETHER_DB_POOL_SIZE="4") as server:
        path = f"/api/tasks/{task.public_id}"
        for _ in range(3):
            with concurrent.futures.ThreadPoolExecutor(24) as pool:
                statuses = list(pool.map(lambda _: _get(server.port, path, world.token), range(24)))
            assert statuses == [200] * 24
        # At most the server's pool of 4; without the pool: 24 more a burst.
        assert _open_connections(name) - before <= 4
