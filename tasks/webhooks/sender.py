"""Sending the outbox: claim a due delivery, sign it, POST it, record the attempt.

Any number of senders may run (``manage.py send_webhooks``, on SQLite and Postgres):

- A claim is one conditional ``UPDATE … WHERE status = 'pending' AND (claimed_until IS
  NULL OR claimed_until < now) AND no earlier delivery of the same app and task is
  pending``; the row count says who won. The claim lasts ``ETHER_WEBHOOK_CLAIM_SECONDS``
  (more than twice the request timeout), so only a sender that died loses it.
- Deliveries of one app about one task go in order: a later one is not claimable while
  an earlier one is pending (waiting for a retry included), so it waits until the earlier
  one was delivered or given up.
- The outcome is committed right after the response. A sender killed between the
  receiver's 2xx and that commit leaves the delivery pending, and it is sent again once
  the claim runs out: delivery is at least once, and receivers dedupe on ``webhook-id``.
  A delivery recorded as delivered is never sent again (unless resent by hand).
"""

from __future__ import annotations

import http.client
import logging
import socket
import ssl
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone
from standardwebhooks import Webhook

from api import metrics
from tasks.webhooks.models import (
    DeliveryStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from tasks.webhooks.targets import Target, TargetRefused, check

log = logging.getLogger(__name__)

USER_AGENT = "Ether-Webhooks/1"
MAX_RESPONSE_BYTES = 64 * 1024
MAX_ERROR_CHARS = 500


def _claimable(now: datetime) -> Q:
    earlier = WebhookDelivery.objects.filter(
        app_id=OuterRef("app_id"),
        task_id=OuterRef("task_id"),
        pk__lt=OuterRef("pk"),
        status=DeliveryStatus.PENDING,
    )
    return (
        Q(status=DeliveryStatus.PENDING)
        & (Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        & ~Exists(earlier)
    )


def delivery_claim(*, sender: str, limit: int = 20) -> WebhookDelivery | None:
    """Takes one due delivery for ``sender``, or None when none is due."""
    now = timezone.now()
    candidates = list(
        WebhookDelivery.objects.filter(_claimable(now), next_attempt_at__lte=now)
        .order_by("next_attempt_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )
    until = now + timedelta(seconds=settings.ETHER_WEBHOOK_CLAIM_SECONDS)
    for pk in candidates:
        # The same conditions again, in the UPDATE itself: only one sender can match.
        won = WebhookDelivery.objects.filter(_claimable(now), pk=pk).update(
            claimed_until=until, claimed_by=sender
        )
        if won:
            return WebhookDelivery.objects.select_related("app", "app__webhook").get(pk=pk)
    return None


def attempt_open(*, delivery: WebhookDelivery, sender: str) -> WebhookAttempt:
    """The attempt's row, written before connecting, so even an attempt whose sender dies
    is on record; an earlier one left open (its sender died) is marked interrupted."""
    now = timezone.now()
    with transaction.atomic():
        WebhookAttempt.objects.filter(delivery=delivery, finished_at__isnull=True).update(
            finished_at=now,
            error="interrupted: the sender stopped before recording an answer "
            "(the receiver may have got it)",
        )
        endpoint = getattr(delivery.app, "webhook", None)
        return WebhookAttempt.objects.create(
            delivery=delivery,
            started_at=now,
            ok=False,
            url=endpoint.url if endpoint is not None else "",
            sender=sender,
        )


def signatures(endpoint: WebhookEndpoint, msg_id: str, at: datetime, body: str) -> str:
    """The ``webhook-signature`` header: one ``v1,…`` per secret in force, by the
    Standard Webhooks library (the previous secret too, during a rotation's overlap)."""
    secrets = [endpoint.secret]
    if (
        endpoint.previous_secret
        and endpoint.previous_secret_until
        and at < (endpoint.previous_secret_until)
    ):
        secrets.append(endpoint.previous_secret)
    return " ".join(Webhook(secret).sign(msg_id, at, body) for secret in secrets)


@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    error: str


def _connect(target: Target, timeout: float) -> socket.socket:
    """A socket to one of the checked addresses (never a fresh lookup: no rebinding)."""
    last: OSError | None = None
    for address in target.addresses:
        try:
            sock = socket.create_connection((address, target.port), timeout=timeout)
        except OSError as exc:
            last = exc
            continue
        if target.scheme == "https":
            context = ssl.create_default_context()
            sock = context.wrap_socket(sock, server_hostname=target.host)
        return sock
    raise last or OSError("no address to connect to")


def post(target: Target, body: bytes, headers: dict[str, str], timeout: float) -> Outcome:
    """One POST, redirects not followed (a 3xx is a failure), the response read to at most
    ``MAX_RESPONSE_BYTES`` within the timeout."""
    deadline = time.monotonic() + timeout
    host = f"[{target.host}]" if ":" in target.host else target.host
    if target.port not in (80, 443):
        host = f"{host}:{target.port}"
    connection = http.client.HTTPConnection(target.host, target.port, timeout=timeout)
    try:
        sock = connection.sock = _connect(target, timeout)
        connection.putrequest("POST", target.path, skip_host=True, skip_accept_encoding=True)
        connection.putheader("Host", host)
        for name, value in headers.items():
            connection.putheader(name, value)
        connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        left = MAX_RESPONSE_BYTES
        while left > 0:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("response body not read within the timeout")
            sock.settimeout(remaining)  # the connection may have let go of it
            chunk = response.read(min(left, 8192))
            if not chunk:
                break
            left -= len(chunk)
        if 200 <= response.status < 300:
            return Outcome(response.status, "")
        return Outcome(response.status, f"HTTP {response.status} {response.reason}"[:200])
    except (OSError, http.client.HTTPException, ssl.SSLError) as exc:
        kind = "timeout" if isinstance(exc, TimeoutError | socket.timeout) else type(exc).__name__
        return Outcome(None, f"{kind}: {exc}"[:MAX_ERROR_CHARS])
    finally:
        connection.close()


def attempt(delivery: WebhookDelivery) -> Outcome:
    """Sends a claimed delivery once (no database write)."""
    app = delivery.app
    endpoint = getattr(app, "webhook", None)
    if app.revoked_at is not None:
        return Outcome(None, "refused: the app's key was revoked")
    if endpoint is None or not endpoint.enabled:
        return Outcome(None, "refused: the app has no webhook URL or secret")
    try:
        target = check(endpoint.url)
    except TargetRefused as exc:
        return Outcome(None, f"refused: {exc}"[:MAX_ERROR_CHARS])
    now = timezone.now()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "webhook-id": delivery.public_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signatures(endpoint, delivery.public_id, now, delivery.body),
    }
    return post(target, delivery.body.encode(), headers, settings.ETHER_WEBHOOK_TIMEOUT_SECONDS)


def backoff(attempts: int) -> float | None:
    """Seconds until the next attempt after ``attempts`` failed ones; None: give up."""
    schedule = settings.ETHER_WEBHOOK_RETRY_SECONDS
    return schedule[attempts - 1] if attempts <= len(schedule) else None


def record(
    *, delivery: WebhookDelivery, sender: str, outcome: Outcome, log_row: WebhookAttempt, ms: int
) -> WebhookDelivery:
    """Completes the attempt and moves the delivery on, in one transaction."""
    ok = outcome.status_code is not None and 200 <= outcome.status_code < 300
    endpoint = getattr(delivery.app, "webhook", None)
    now = timezone.now()
    with transaction.atomic():
        WebhookAttempt.objects.filter(pk=log_row.pk).update(
            finished_at=now,
            duration_ms=ms,
            status_code=outcome.status_code,
            ok=ok,
            error=outcome.error,
        )
        mine = WebhookDelivery.objects.filter(pk=delivery.pk, status=DeliveryStatus.PENDING)
        attempts = delivery.attempts + 1
        if ok:
            # Delivered is delivered, even if our claim had run out meanwhile.
            mine.update(
                status=DeliveryStatus.DELIVERED,
                attempts=F("attempts") + 1,
                delivered_at=now,
                claimed_until=None,
                last_error="",
            )
            if endpoint is not None:
                WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
                    last_success_at=now, failures_in_row=0
                )
                # The receiver is back: what waits for a retry goes now, in order,
                # rather than at the end of its backoff.
                WebhookDelivery.objects.pending().filter(
                    app_id=delivery.app_id, next_attempt_at__gt=now, attempts__gt=0
                ).update(next_attempt_at=now)
        else:
            wait = backoff(attempts)
            changes: dict = {
                "attempts": F("attempts") + 1,
                "claimed_until": None,
                "last_error": outcome.error,
            }
            if wait is None or outcome.error.startswith("refused: the app"):
                changes["status"] = DeliveryStatus.FAILED
            else:
                changes["next_attempt_at"] = now + timedelta(seconds=wait)
            mine.filter(claimed_by=sender).update(**changes)
            if endpoint is not None:
                WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
                    last_failure_at=now, failures_in_row=F("failures_in_row") + 1
                )
    delivery.refresh_from_db()
    return delivery


def send_one(*, sender: str) -> WebhookDelivery | None:
    """Claims, sends and records one due delivery; None when nothing was due."""
    delivery = delivery_claim(sender=sender)
    if delivery is None:
        return None
    log_row = attempt_open(delivery=delivery, sender=sender)
    clock = time.monotonic()
    try:
        outcome = attempt(delivery)
    except Exception as exc:  # a bug must not stop the sender; the attempt says what broke
        log.exception("webhook %s failed unexpectedly", delivery.public_id)
        outcome = Outcome(None, f"error: {type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS])
    ms = int((time.monotonic() - clock) * 1000)
    _count(outcome)
    return record(delivery=delivery, sender=sender, outcome=outcome, log_row=log_row, ms=ms)


def _count(outcome: Outcome) -> None:
    """The attempt in /metrics (api/metrics.py): a failure by its reason."""
    metrics.WEBHOOK_ATTEMPTS.inc()
    if outcome.status_code is not None and 200 <= outcome.status_code < 300:
        return
    if outcome.status_code is not None:
        reason = "status"
    elif "timeout" in outcome.error.lower() or "timed out" in outcome.error.lower():
        reason = "timeout"
    elif outcome.error.startswith("refused") or "refused" in outcome.error.lower():
        reason = "refused"
    else:
        reason = "error"
    metrics.WEBHOOK_FAILURES.labels(reason).inc()


def outbox_gauges(now: datetime) -> None:
    """The outbox as the sender sees it, for /metrics: messages not yet acknowledged and
    the age of the oldest (0 when none waits)."""
    pending = WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING)
    oldest = pending.order_by("created_at").values_list("created_at", flat=True).first()
    metrics.WEBHOOK_OUTBOX_PENDING.set(pending.count())
    metrics.WEBHOOK_OUTBOX_LAG_SECONDS.set((now - oldest).total_seconds() if oldest else 0)
