"""A typed client for Ether's harness API, over httpx (docs/harness-client.md).

It imports nothing from the server: copy the package, or install this repository, and
point it at any Ether server with a harness app's key.

    from ether_client import EtherClient

    with EtherClient("http://127.0.0.1:8080", key, app_id="demo-harness") as ether:
        run = ether.wait_for_task()
        with run:  # heartbeats in the background
            run.step("context", f"Reading {run.title}")
            answer = run.ask("Which database?", ["SQLite", "Postgres"])
            run.result("no_changes", "Nothing to do", no_changes_reason=answer)
"""

from __future__ import annotations

from ether_client.client import EtherClient, EtherError, EtherUnavailable, Retry
from ether_client.run import Cancelled, LeaseLost, Run
from ether_client.webhooks import WebhookVerificationError, verify_webhook

__all__ = [
    "Cancelled",
    "EtherClient",
    "EtherError",
    "EtherUnavailable",
    "LeaseLost",
    "Retry",
    "Run",
    "WebhookVerificationError",
    "verify_webhook",
]
