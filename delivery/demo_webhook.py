"""``demo_harness --next --webhook``: a local receiver that wakes the demo on ``task.ready``.

The demo points its app's ``webhook_url`` at the receiver and takes a fresh signing
secret (both through the product API, with a user's access token: webhook settings are
a person's to change), then waits on the receiver between claim-next looks instead of
the server's long poll. On the way out it puts the app's previous URL back, so deliveries
do not pile up for a receiver that is gone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from django.core.management.base import CommandError

from ether_client.receiver import WebhookReceiver

Wake = Callable[[float], bool]


@contextmanager
def webhook_wake(command: Any, options: dict[str, Any], token: str | None) -> Iterator[Wake | None]:
    if not options["webhook"]:
        yield None
        return
    if not token:
        raise CommandError(
            "--webhook needs a user access token to set the app's webhook URL: pass --token, "
            "or run `make run` (seed_demo saves one in var/demo.json)."
        )
    app = f"/api/harness-apps/{command.client.app_id}"
    people = httpx.Client(
        base_url=command.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    )

    def call(method: str, path: str, body: Any = None) -> Any:
        response = people.request(method, path, json=body)
        if response.status_code >= 400:
            detail = response.json().get("detail", response.text) if response.content else ""
            raise CommandError(f"{method} {path} was refused ({response.status_code}): {detail}")
        return response.json() if response.content else None

    with people, WebhookReceiver(port=options["webhook_port"]) as receiver:
        previous = call("GET", app).get("webhook_url") or ""
        call("PATCH", app, {"webhook_url": receiver.url})
        try:
            receiver.secret = call("POST", f"{app}/webhook/secret")["secret"]
            command.say(f"Listening for webhooks on {receiver.url}")

            def wake(seconds: float) -> bool:
                ready = receiver.wait("task.ready", seconds)
                if ready is not None:
                    command.say(f"  [webhook] task.ready {ready['data'].get('task_id')}")
                return ready is not None

            yield wake
        finally:
            call("PATCH", app, {"webhook_url": previous})
