"""``POST /v1/harnesses/preview``: a draft definition resolved without saving it.

Everruns answers the effective ``system_prompt`` and the ``tools`` a session would get.
Ether adds ``harness``: the draft resolved exactly as a harness app's claim bundle would
carry it. The draft is written by the same services as a real create or update, rendered
by the same code as the bundle, and rolled back: there is no second implementation of the
rules to drift from the first.

- Without ``harness_id`` the draft is a new definition (POST's fields, none required).
  With it, the draft is a change to that definition (PATCH's rules): every definition and
  app below it would see the change.
- With ``app_id``, ``harness`` is that app's bundle ``harness``: for a new draft, the app
  pointed at it; for a change, the app as it is (its definition may descend from the
  changed one, or not be touched by it at all).
A new draft has no id yet: its id reads ``draft`` (in ``id``, ``layers`` and ``origins``),
so does its name unless the draft gives one, and its links are null.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from django.db import transaction

from accounts.models import Org
from corpus.selectors import tools_for_org
from corpus.serializers import ToolOut
from tasks.harnesses import selectors as hs
from tasks.harnesses import services
from tasks.harnesses.serializers import harness_out
from tasks.models import Harness, HarnessApp

DRAFT_ID = "draft"
LINKS = ("self_url", "view_url", "ui_link")


class _Discard(Exception):
    """Raised inside the preview's transaction to roll everything back."""


def harness_preview(
    *,
    org: Org,
    data: dict[str, Any],
    target: Harness | None,
    app: HarnessApp | None,
    base_url: str,
) -> dict[str, Any]:
    rendered: dict[str, Any] = {}
    try:
        with transaction.atomic():
            rendered = _render(org=org, data=data, target=target, app=app, base_url=base_url)
            raise _Discard
    except _Discard:
        pass
    harness = rendered["harness"]
    return {
        "system_prompt": harness["system_prompt"],
        "tools": ToolOut(tools_for_org(org), many=True).data,
        "harness": harness,
    }


def _render(
    *,
    org: Org,
    data: dict[str, Any],
    target: Harness | None,
    app: HarnessApp | None,
    base_url: str,
) -> dict[str, Any]:
    if target is not None:
        services.harness_update(org=org, harness=target, data=data)
        draft_id = None
    else:
        # A name nobody has, so a preview never collides; the draft's own is shown.
        placeholder = f"draft-{secrets.token_hex(8)}"
        created = services.harness_create(org=org, data={**data, "name": placeholder})
        draft_id = created.public_id
        if app is not None:
            HarnessApp.objects.filter(pk=app.pk).update(harness=created)
            app.harness, app.harness_id = created, created.pk
    if app is not None:
        bundled = hs.bundle_harness(app)
        body = harness_out(bundled, base_url=base_url, resolved=True) if bundled else None
    else:
        chosen = target if target is not None else created
        body = harness_out(hs.counted(chosen, org), base_url=base_url, resolved=True)
    assert body is not None  # an app here always has a definition
    if draft_id is not None:
        # Ids are random: the draft's appears nowhere but where it names the draft.
        body = json.loads(json.dumps(body).replace(draft_id, DRAFT_ID))
        if body["id"] == DRAFT_ID:
            name = data.get("name") or DRAFT_ID
            body.update(
                {link: None for link in LINKS},
                name=name,
                display_name=data.get("display_name") or name,
            )
    return {"harness": body}
