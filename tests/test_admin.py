from __future__ import annotations

import pytest
from django.test import Client

from corpus.models import AccessToken
from tasks.models import HarnessApp

PAGES = [
    "corpus/org",
    "corpus/project",
    "corpus/repository",
    "corpus/accesstoken",
    "tasks/harnessapp",
    "tasks/task",
    "tasks/run",
    "tasks/step",
    "tasks/interrupt",
    "tasks/result",
    "tasks/event",
    "corpus/document",
    "corpus/tool",
    "corpus/skill",
    "corpus/compaction",
]


@pytest.fixture
def staff(world):
    world.user.is_staff = world.user.is_superuser = True
    world.user.save()
    client = Client()
    client.force_login(world.user)
    return client


@pytest.mark.parametrize("page", PAGES)
def test_admin_changelists_open_for_staff(staff, claimed, page):
    response = staff.get(f"/admin/{page}/")
    assert response.status_code == 200


def test_admin_never_shows_key_or_token_hashes(world, staff):
    app = HarnessApp.objects.get(app_id="builder", org=world.org)
    token = AccessToken.objects.get(user=world.user)
    page = staff.get(f"/admin/tasks/harnessapp/{app.pk}/change/").content.decode()
    assert app.key_hash not in page and app.key_prefix in page
    page = staff.get(f"/admin/corpus/accesstoken/{token.pk}/change/").content.decode()
    assert token.token_hash not in page


def test_admin_revoke_action_stops_the_key(world, staff, task):
    app = HarnessApp.objects.get(app_id="builder", org=world.org)
    response = staff.post(
        "/admin/tasks/harnessapp/",
        {"action": "revoke_keys", "_selected_action": [app.pk]},
    )
    assert response.status_code == 302
    app.refresh_from_db()
    assert app.revoked_at is not None
    assert world.harness().claim(task.public_id).status_code == 401
