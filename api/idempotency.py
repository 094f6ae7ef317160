"""``Idempotency-Key`` for every POST (docs/contract.md §0).

A retry with the same key and body gets the stored status and body and changes nothing;
the same key with another body is 422 ``idempotency_key_reused``; a retry while the first
is still running is 409 ``request_in_flight``. The stored answer commits in the same
transaction as the handler's writes, so both exist or neither does.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import wraps
from typing import Any

from django.conf import settings
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.utils import timezone
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from api.errors import DomainError, IdempotencyKeyReused, RequestInFlight, ValidationFailed
from api.models import IdempotencyRecord

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
REPLAYED_HEADER = "Idempotent-Replayed"
KEPT_HEADERS = ("Retry-After", "Location", "ETag")


class _Abort(Exception):
    def __init__(self, response: Response) -> None:
        self.response = response


def caller_scope(request: Request) -> str:
    """Keys are scoped to the caller: two harnesses may pick the same key."""
    auth = request.auth
    kind = getattr(auth, "idempotency_scope", None)
    if callable(kind):
        return kind()
    return f"user:{request.user.pk}"


def _fingerprint(request: Request) -> str:
    return fingerprint(request.method or "", request.path, request.data)


def fingerprint(method: str, path: str, data: Any) -> str:
    """What makes two requests "the same" for one key: method, path and parsed body."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    material = f"{method} {path}\n{canonical}"
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


def done_record_insert(
    *, scope: str, key: str, fingerprint: str, status: int, body: Any, created_at: datetime
) -> tuple[str, list[Any]]:
    """The ``INSERT`` of a key's record with its final answer (a JSON body), for a write
    that stores its answer in its own transaction without the decorator (the step fast
    lane, tasks.services.steps_direct). The same row ``_acquire`` + ``_complete`` leave."""
    fields = IdempotencyRecord._meta
    values = {
        "scope": scope,
        "key": key,
        "fingerprint": fingerprint,
        "state": IdempotencyRecord.DONE,
        "status_code": status,
        "body": body,
        "headers": {"Content-Type": "application/json"},
        "created_at": created_at,
    }
    params = [
        fields.get_field(name).get_db_prep_save(value, connection) for name, value in values.items()
    ]
    columns = ", ".join(connection.ops.quote_name(name) for name in values)
    placeholders = ", ".join(["%s"] * len(values))
    return f"INSERT INTO {fields.db_table} ({columns}) VALUES ({placeholders})", params


def _replay(record: IdempotencyRecord) -> Response:
    headers = dict(record.headers)
    content_type = headers.pop("Content-Type", None)
    headers[REPLAYED_HEADER] = "true"
    return Response(
        record.body, status=record.status_code, headers=headers, content_type=content_type
    )


def _acquire(scope: str, key: str, fingerprint: str) -> IdempotencyRecord | Response:
    now = timezone.now()
    ttl = timedelta(seconds=settings.ETHER_IDEMPOTENCY_TTL_SECONDS)
    lock = timedelta(seconds=settings.ETHER_IDEMPOTENCY_LOCK_SECONDS)
    for _ in range(3):
        try:
            with transaction.atomic():
                return IdempotencyRecord.objects.create(
                    scope=scope, key=key, fingerprint=fingerprint, created_at=now
                )
        except IntegrityError:
            pass
        existing = IdempotencyRecord.objects.filter(scope=scope, key=key).first()
        if existing is None:
            continue  # expired and deleted by someone else meanwhile
        age = now - existing.created_at
        if age >= ttl:
            IdempotencyRecord.objects.filter(
                pk=existing.pk, created_at=existing.created_at
            ).delete()
            continue
        if existing.fingerprint != fingerprint:
            raise IdempotencyKeyReused(
                "This Idempotency-Key was used with a different request body or route."
            )
        if existing.state == IdempotencyRecord.IN_FLIGHT:
            if age >= lock:
                # Its process died: its writes rolled back with it, so take the key over.
                taken = IdempotencyRecord.objects.filter(
                    pk=existing.pk,
                    created_at=existing.created_at,
                    state=IdempotencyRecord.IN_FLIGHT,
                ).update(created_at=now)
                if taken:
                    existing.created_at = now
                    return existing
            raise RequestInFlight(
                "A request with this Idempotency-Key is still being processed; retry shortly.",
                retry_after=1,
            )
        return _replay(existing)
    raise RequestInFlight("This Idempotency-Key is contended; retry shortly.", retry_after=1)


def _complete(record: IdempotencyRecord, response: Response) -> None:
    body = json.loads(JSONRenderer().render(response.data) or b"null")
    headers = {name: response[name] for name in KEPT_HEADERS if response.has_header(name)}
    # Not yet rendered: its Content-Type header is still Django's default, not what DRF sends.
    headers["Content-Type"] = response.content_type or "application/json"
    IdempotencyRecord.objects.filter(pk=record.pk).update(
        state=IdempotencyRecord.DONE, status_code=response.status_code, body=body, headers=headers
    )


def storable(response: Response) -> bool:
    """Whether a retry with the same key should get this answer again.

    Successes and refusals of the request itself (400, 403, 404, 422) are final. A 409
    reports the state of the task at that moment (a lease held, a task paused), which
    changes, and a 5xx is our failure: for those the key is released so a retry runs.
    A ``transient`` answer is not the request's last word (a long poll's waiting look,
    api.longpoll): the key is stored with the answer that follows.
    """
    status = response.status_code
    if getattr(response, "transient", False):
        return False
    return status < 500 and status not in (409, 429) and not response.has_header("Retry-After")


def _forget(record: IdempotencyRecord) -> None:
    """Drop the claim on a key whose request failed on our side, so a retry runs again.

    If even that fails (the database is down), the row stays in flight and is taken over
    after the lock window; its write never committed.
    """
    with contextlib.suppress(DatabaseError):
        IdempotencyRecord.objects.filter(pk=record.pk).delete()


def idempotent(handler: Callable[..., Response]) -> Callable[..., Response]:
    """Decorate a DRF ``post`` method so that it honours ``Idempotency-Key``."""

    @wraps(handler)
    def wrapper(view: Any, request: Request, *args: Any, **kwargs: Any) -> Response:
        key = request.headers.get(HEADER)
        if key is None:
            return handler(view, request, *args, **kwargs)
        if not key.strip() or len(key) > MAX_KEY_LENGTH:
            raise ValidationFailed(
                {HEADER: [f"Must be 1 to {MAX_KEY_LENGTH} characters."]},
                detail="The Idempotency-Key header is invalid.",
            )
        acquired = _acquire(caller_scope(request), key, _fingerprint(request))
        if isinstance(acquired, Response):
            return acquired
        record = acquired
        # Work that must commit even if the request is refused (recording an expired
        # lease) runs before the block whose rollback would undo it.
        prepare = getattr(view, "prepare_idempotent", None)
        if prepare is not None:
            prepare(request, *args, **kwargs)
        try:
            with transaction.atomic():
                response = handler(view, request, *args, **kwargs)
                if not storable(response):
                    raise _Abort(response)
                _complete(record, response)
            return response
        except _Abort as abort:
            _forget(record)
            return abort.response
        except Exception as exc:
            # The handler's writes rolled back with the block; remember the refusal itself.
            refused = getattr(view, "refused_idempotent", None)
            if refused is not None and isinstance(exc, DomainError):
                # Work a refusal calls for that must commit (recording a lapsed lease),
                # now that the block whose rollback would undo it is over.
                refused(request, *args, **kwargs)
            try:
                response = view.handle_exception(exc)
            except Exception:
                _forget(record)
                raise
            if storable(response):
                try:
                    with transaction.atomic():
                        _complete(record, response)
                except DatabaseError:
                    _forget(record)
            else:
                _forget(record)
            return response

    # Read by api.schema.EtherAutoSchema: the header and the 422 go in the schema.
    wrapper.idempotent = True  # type: ignore[attr-defined]
    return wrapper
