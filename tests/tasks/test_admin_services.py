"""Every admin write goes through a service: the admin keeps the API's rules."""

from __future__ import annotations

import pytest
from django.utils import timezone

from accounts.models import AccessToken
from tasks.harnesses.services import harness_create, harness_delete
from tasks.models import Harness, HarnessApp
from tests.helpers import definition_form, staff_client


@pytest.fixture
def staff(world):
    return staff_client(world.user)


def _defaults(org):
    return list(Harness.objects.filter(org=org, is_default=True).values_list("name", flat=True))


def test_admin_add_of_a_default_definition_leaves_exactly_one_default(world, staff):
    harness_create(org=world.org, data={"name": "old-default", "is_default": True})
    response = staff.post("/admin/tasks/harness/add/", definition_form(world.org, is_default="on"))
    assert response.status_code == 302, response.content.decode()[:2000]
    assert _defaults(world.org) == ["admin-made"]


def test_admin_change_to_default_leaves_exactly_one_default(world, staff):
    harness_create(org=world.org, data={"name": "old-default", "is_default": True})
    made = harness_create(org=world.org, data={"name": "admin-made"})
    response = staff.post(
        f"/admin/tasks/harness/{made.public_id}/change/",
        definition_form(world.org, is_default="on"),
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert _defaults(world.org) == ["admin-made"]
    made.refresh_from_db()
    assert made.updated_at > made.created_at


def test_admin_cannot_make_an_archived_definition_the_default(world, staff):
    archived = harness_delete(
        org=world.org, harness=harness_create(org=world.org, data={"name": "admin-made"})
    )
    response = staff.post(
        f"/admin/tasks/harness/{archived.public_id}/change/",
        definition_form(world.org, is_default="on"),
    )
    assert response.status_code == 200
    assert "Only an active harness can be the default." in response.content.decode()
    assert _defaults(world.org) == []


def test_admin_change_keeps_a_definition_in_its_org(world, staff):
    made = harness_create(org=world.org, data={"name": "admin-made"})
    response = staff.post(
        f"/admin/tasks/harness/{made.public_id}/change/",
        definition_form(world.outsider_org, system_prompt="Moved?"),
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    made.refresh_from_db()
    assert made.org == world.org and made.system_prompt == "Moved?"


def _app_form(app, **fields):
    return {"name": app.name, "harness": app.harness_id or "", **fields}


def test_admin_attaches_only_an_active_definition_of_the_apps_org(world, staff):
    app = HarnessApp.objects.get(app_id="builder", org=world.org)
    foreign = harness_create(org=world.outsider_org, data={"name": "theirs"})
    archived = harness_delete(
        org=world.org, harness=harness_create(org=world.org, data={"name": "old"})
    )
    url = f"/admin/tasks/harnessapp/{app.pk}/change/"
    for refused in (foreign, archived):
        response = staff.post(url, _app_form(app, harness=refused.pk))
        assert response.status_code == 200
        app.refresh_from_db()
        assert app.harness_id != refused.pk
    ours = harness_create(org=world.org, data={"name": "ours"})
    response = staff.post(url, _app_form(app, harness=ours.pk, name="Builder bot"))
    assert response.status_code == 302, response.content.decode()[:2000]
    app.refresh_from_db()
    assert (app.harness_id, app.name, app.app_id) == (ours.pk, "Builder bot", "builder")


def test_admin_change_form_cannot_unrevoke_or_delete_an_app(world, staff):
    app = HarnessApp.objects.get(app_id="builder", org=world.org)
    HarnessApp.objects.filter(pk=app.pk).update(revoked_at=timezone.now())
    url = f"/admin/tasks/harnessapp/{app.pk}/change/"
    response = staff.post(url, _app_form(app, revoked_at_0="", revoked_at_1="", app_id="other"))
    assert response.status_code == 302
    app.refresh_from_db()
    assert app.revoked_at is not None and app.app_id == "builder"
    assert (
        staff.post(f"/admin/tasks/harnessapp/{app.pk}/delete/", {"post": "yes"}).status_code == 403
    )
    assert HarnessApp.objects.filter(pk=app.pk).exists()


def test_admin_token_edit_goes_through_the_service_and_never_unrevokes(world, staff):
    token = AccessToken.objects.get(user=world.user)
    AccessToken.objects.filter(pk=token.pk).update(revoked_at=timezone.now())
    url = f"/admin/accounts/accesstoken/{token.pk}/change/"
    response = staff.post(
        url, {"label": "laptop", "expires_at_0": "", "expires_at_1": "", "revoked_at_0": ""}
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    token.refresh_from_db()
    assert token.label == "laptop" and token.revoked_at is not None
    assert (
        staff.post(f"/admin/accounts/accesstoken/{token.pk}/delete/", {"post": "yes"}).status_code
        == 403
    )
    assert AccessToken.objects.filter(pk=token.pk).exists()
