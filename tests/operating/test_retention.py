"""Retention: the sweeper deletes what is past its use, in small batches, and keeps the
record (events, documents, runs, results, deliveries)."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from api import retention
from api.heartbeat import worker_beat
from api.models import IdempotencyRecord, WorkerHeartbeat
from corpus.models import Document, DocumentVersion
from delivery.models import Delivery
from tasks.models import Event, RealtimeTicket, Result, Run, Step
from tasks.realtime.hub import viewer_for_secret
from tasks.services import ticket_create

# The sweeper commits each batch, and the tests read what it left: real transactions.
pytestmark = pytest.mark.django_db(transaction=True)


def sweep() -> str:
    out = io.StringIO()
    call_command("sweep_leases", "--once", stdout=out)
    return out.getvalue()


def key(value: str) -> dict[str, str]:
    return {"HTTP_IDEMPOTENCY_KEY": value}


def test_idempotency_records_past_their_ttl_are_deleted_and_the_key_works_again(world, settings):
    settings.ETHER_IDEMPOTENCY_TTL_SECONDS = 3600
    harness = world.harness()
    old, fresh = world.task(), world.task()
    assert harness.claim(old.public_id, **key("old-claim")).status_code == 200
    assert harness.claim(fresh.public_id, **key("fresh-claim")).status_code == 200
    IdempotencyRecord.objects.filter(key="old-claim").update(
        created_at=timezone.now() - timedelta(seconds=3601)
    )
    assert "idempotency: 1" in sweep()
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["fresh-claim"]
    # The fresh key still replays; the purged one runs again (a new epoch).
    replay = harness.claim(fresh.public_id, **key("fresh-claim"))
    assert replay["Idempotent-Replayed"] == "true"
    again = harness.claim(old.public_id, **key("old-claim"))
    assert not again.has_header("Idempotent-Replayed")
    assert again.json()["lease_epoch"] == 2


def test_spent_and_expired_tickets_are_deleted_and_a_live_one_kept(world):
    spent = ticket_create(user=world.user)
    assert viewer_for_secret(spent.ticket) is not None  # spends it
    expired = ticket_create(user=world.user)
    RealtimeTicket.objects.filter(expires_at=expired.expires_at).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    live = ticket_create(user=world.user)
    assert RealtimeTicket.objects.count() == 3
    assert "realtime_tickets: 2" in sweep()
    assert list(RealtimeTicket.objects.values_list("expires_at", flat=True)) == [live.expires_at]
    # A deleted ticket is refused exactly as a spent one; the live one still opens.
    assert viewer_for_secret(spent.ticket) is None
    assert viewer_for_secret(expired.ticket) is None
    assert viewer_for_secret(live.ticket) is not None


def test_heartbeats_of_workers_gone_past_the_retention_days_are_deleted(world, settings):
    settings.ETHER_RETENTION_DAYS = 7
    worker_beat("retired")
    WorkerHeartbeat.objects.filter(name="retired").update(
        beat_at=timezone.now() - timedelta(days=7, seconds=1)
    )
    sweep()  # beats nothing itself (--once), deletes the retired worker's row
    assert not WorkerHeartbeat.objects.filter(name="retired").exists()


def test_the_record_is_kept_however_old(world, settings):
    """A whole harness loop aged past retention: events, documents and their versions,
    runs, steps, results and deliveries all stay."""
    settings.ETHER_RETENTION_DAYS = 1
    harness = world.harness()
    task = world.task()
    run_id = harness.claim(task.public_id).json()["run_id"]
    harness.step(task.public_id, run_id, "one")
    assert harness.result(task.public_id, run_id, working_summary="Notes.").status_code == 200
    models = (Event, Document, DocumentVersion, Run, Step, Result, Delivery)
    long_ago = timezone.now() - timedelta(days=400)
    for model in models:
        fields = {f.name for f in model._meta.fields}
        if "created_at" in fields:
            model.objects.update(created_at=long_ago)
    before = {model.__name__: model.objects.count() for model in models}
    assert all(before.values()), before
    sweep()
    assert {model.__name__: model.objects.count() for model in models} == before


def test_deletes_go_in_small_batches_and_a_pass_is_bounded(world, settings, monkeypatch):
    settings.ETHER_RETENTION_BATCH = 3
    monkeypatch.setattr(retention, "MAX_BATCHES_PER_TICK", 2)
    old = timezone.now() - timedelta(days=2)
    IdempotencyRecord.objects.bulk_create(
        IdempotencyRecord(scope="user:1", key=f"k{n}", fingerprint="f", created_at=old)
        for n in range(10)
    )
    with CaptureQueriesContext(connection) as queries:
        first = retention.purge_expired()
    deletes = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("DELETE")]
    # Two batches of three, each its own statement (and transaction); four rows wait.
    assert first["idempotency"] == 6
    assert len(deletes) == 2
    assert IdempotencyRecord.objects.count() == 4
    assert retention.purge_expired()["idempotency"] == 4  # 3 + 1: the last batch is short
    assert retention.purge_expired()["idempotency"] == 0
    assert not IdempotencyRecord.objects.exists()


def test_webhook_attempts_past_the_retention_days_are_deleted_and_the_delivery_kept(
    world, settings
):
    from tasks.webhooks.models import WebhookAttempt, WebhookDelivery
    from tasks.webhooks.services import webhook_secret_rotate, webhook_test, webhook_url_set

    settings.ETHER_RETENTION_DAYS = 7
    settings.ETHER_WEBHOOK_ALLOW_PRIVATE = True
    webhook_url_set(app=world.app, url="http://127.0.0.1:9/hook")
    webhook_secret_rotate(app=world.app)
    delivery = webhook_test(app=world.app)
    now = timezone.now()
    for started in (now - timedelta(days=7, seconds=1), now - timedelta(days=6)):
        WebhookAttempt.objects.create(
            delivery=delivery, started_at=started, ok=False, error="refused", url="x", sender="t"
        )
    assert "webhook_attempts: 1" in sweep()
    assert list(WebhookAttempt.objects.values_list("started_at", flat=True)) == [
        now - timedelta(days=6)
    ]
    assert WebhookDelivery.objects.filter(pk=delivery.pk).exists()
