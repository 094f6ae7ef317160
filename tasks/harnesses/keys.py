"""Harness apps: registration, key rotation and revocation."""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from accounts.credentials import HARNESS_KEY_PREFIX, display_prefix, hash_secret, new_secret
from accounts.models import Org
from accounts.revocation import announce_revoked
from api.errors import NotFound, ValidationFailed
from tasks.errors import InvalidTransition
from tasks.harnesses.auth import forget as forget_keys
from tasks.harnesses.selectors import harness_get
from tasks.models import HarnessApp
from tasks.realtime.streams import app_group
from tasks.services.expiry import leases_end_for_revoked_app

APP_ID = re.compile(r"^[a-z0-9]+(?:[-_][a-z0-9]+)*$")


@dataclass(frozen=True)
class IssuedKey:
    app: HarnessApp
    key: str


def harness_app_create(
    *, org: Org, app_id: str, harness: str = "", rotate: bool = False
) -> IssuedKey:
    """Registers ``app_id`` (or, with ``rotate``, gives an existing app a new key)."""
    if not APP_ID.match(app_id) or len(app_id) > 64:
        raise ValidationFailed({"app_id": ["Lowercase letters, digits, - and _, at most 64."]})
    key = new_secret(HARNESS_KEY_PREFIX)
    with transaction.atomic():
        app = (
            HarnessApp.objects.select_for_update(of=("self",))
            .filter(org=org, app_id=app_id)
            .first()
        )
        if app is not None and not rotate:
            raise InvalidTransition(
                f"Harness app {app_id!r} already exists in {org.slug}; rotate its key instead."
            )
        if app is None:
            app = HarnessApp(org=org, app_id=app_id, name=app_id)
        else:
            # Streams opened with the old key end with it (their re-check also sees it).
            announce_revoked(groups=[app_group(app.pk)], reason="key_rotated")
        app.key_hash = hash_secret(key)
        app.key_prefix = display_prefix(key)
        app.revoked_at = None
        if harness:
            # By id or name, as /v1/harnesses looks them up; an unknown one is an error.
            app.harness = harness_get(org=org, ref=harness)
        app.save()
    return IssuedKey(app=app, key=key)


def harness_app_revoke(*, org: Org, app_id: str) -> HarnessApp:
    """Revokes the app's key and ends its live leases in the same transaction, so a rival
    can claim at once (the admin action and ``revoke_harness_app`` both come here). Its
    realtime streams are told to close once the revoke commits."""
    app = HarnessApp.objects.filter(org=org, app_id=app_id).first()
    if app is None:
        raise NotFound(f"No harness app {app_id!r} in {org.slug}.")
    with transaction.atomic():
        HarnessApp.objects.filter(pk=app.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        # Also on a second revoke: a lease granted in a race with the first one ends here.
        leases_end_for_revoked_app(app=app)
        announce_revoked(groups=[app_group(app.pk)], reason="app_revoked")
        transaction.on_commit(forget_keys)
    forget_keys()  # and now: a request of this process must not find the key cached
    app.refresh_from_db()
    return app


def harness_app_rename(*, app: HarnessApp, name: str) -> HarnessApp:
    """The app's display name; its ``app_id`` (what it signs in as) never changes."""
    HarnessApp.objects.filter(pk=app.pk).update(name=name)
    forget_keys()
    app.name = name
    return app
