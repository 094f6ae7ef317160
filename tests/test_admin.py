from __future__ import annotations

import pytest

from accounts.models import AccessToken
from tasks.models import HarnessApp
from tests.helpers import definition_form, staff_client

PAGES = [
    "accounts/org",
    "accounts/project",
    "accounts/repository",
    "accounts/accesstoken",
    "tasks/harnessapp",
    "tasks/harness",
    "tasks/task",
    "tasks/run",
    "tasks/step",
    "tasks/interrupt",
    "tasks/result",
    "tasks/event",
    "tasks/webhookdelivery",
    "corpus/document",
    "corpus/tool",
    "corpus/skill",
    "corpus/compaction",
]


@pytest.fixture
def staff(world):
    return staff_client(world.user)


@pytest.mark.parametrize("page", PAGES)
def test_admin_changelists_open_for_staff(staff, claimed, page):
    response = staff.get(f"/admin/{page}/")
    assert response.status_code == 200


def test_admin_never_shows_key_or_token_hashes(world, staff):
    app = HarnessApp.objects.get(app_id="builder", org=world.org)
    token = AccessToken.objects.get(user=world.user)
    page = staff.get(f"/admin/tasks/harnessapp/{app.pk}/change/").content.decode()
    assert app.key_hash not in page and app.key_prefix in page
    page = staff.get(f"/admin/accounts/accesstoken/{token.pk}/change/").content.decode()
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


# --- harness definitions ---------------------------------------------------------------------
def test_harness_change_page_shows_the_resolved_result_and_its_layers(world, staff):
    from tasks.harnesses.services import harness_create
    from tasks.models import Harness

    base = harness_create(
        org=world.org,
        data={"name": "base", "system_prompt": "Base <b>prompt</b>.", "default_model_id": "m1"},
    )
    child = harness_create(
        org=world.org,
        data={
            "name": "child",
            "system_prompt": "Child prompt.",
            "parent_harness_id": base.public_id,
            "capabilities": [{"ref": "fs", "config": {}}],
        },
    )
    page = staff.get(f"/admin/tasks/harness/{child.public_id}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Effective definition" in html
    assert "generic" not in html.split("Effective definition")[1].split("</table>")[0]
    assert "base → child" in html
    # Typed text is escaped, never markup.
    assert "Base &lt;b&gt;prompt&lt;/b&gt;." in html and "<b>prompt</b>" not in html
    row = html.split("default_model_id</th>")[1].split("</tr>")[0]
    assert "m1" in row and "base" in row
    assert Harness.objects.get(pk=child.pk).parent == base


def test_admin_edits_pass_the_api_checks(world, staff):
    from tasks.models import Harness

    bad = definition_form(world.org, mcp_servers='{"x": {"url": "https://x.io", "type": "stdio"}}')
    response = staff.post("/admin/tasks/harness/add/", bad)
    assert response.status_code == 200
    assert "mcpServers.x.type" in response.content.decode()
    assert not Harness.objects.filter(name="admin-made").exists()

    good = definition_form(
        world.org, initial_files='[{"path": "/workspace/a.txt", "content": "hi"}]'
    )
    response = staff.post("/admin/tasks/harness/add/", good)
    assert response.status_code == 302, response.content.decode()[:2000]
    made = Harness.objects.get(name="admin-made")
    # Stored as the API would store it: normalized path, defaults filled in.
    assert made.initial_files == [
        {"path": "/a.txt", "content": "hi", "encoding": "text", "is_readonly": False}
    ]


def test_built_in_definitions_are_read_only_in_the_admin(world, staff):
    from tasks.models import Harness

    generic = Harness.objects.get(name="generic", org__isnull=True)
    page = staff.get(f"/admin/tasks/harness/{generic.public_id}/change/")
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    response = staff.post(
        f"/admin/tasks/harness/{generic.public_id}/change/",
        definition_form(world.org, name="generic"),
    )
    assert response.status_code == 403
    assert Harness.objects.get(pk=generic.pk).org is None


def test_the_themed_admin_sign_in_goes_to_the_admin_index(client, db):
    # unfold's form has no "next" field of its own; without ours a sign-in at
    # /admin/login/ would land on LOGIN_REDIRECT_URL, a 404.
    page = client.get("/admin/login/").content.decode()
    assert 'name="next" value="/admin/" form="login-form"' in page
    assert '<link rel="icon"' in page and "/static/favicon.svg" in page
