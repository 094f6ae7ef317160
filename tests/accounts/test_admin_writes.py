"""The admin's writes of orgs, members, projects and repositories go through
``accounts.services`` and keep their rules."""

from __future__ import annotations

import pytest

from accounts.models import Membership, Org, Project, Repository
from tests import factories
from tests.helpers import staff_client


@pytest.fixture
def staff(world):
    return staff_client(world.user)


def _repository_form(repo: Repository, **fields) -> dict:
    return {
        "org": repo.org_id,
        "project": repo.project_id,
        "full_name": repo.full_name,
        "url": repo.url,
        "default_branch": repo.default_branch,
        "created_at_0": "2026-01-01",
        "created_at_1": "00:00:00",
        **fields,
    }


def test_admin_adds_a_repository_in_its_projects_org(world, staff):
    ours = factories.make_repo(world.org)
    form = _repository_form(ours, full_name="acme/new", url="https://github.com/acme/new")
    response = staff.post("/admin/accounts/repository/add/", form)
    assert response.status_code == 302, response.content.decode()[:2000]
    made = Repository.objects.get(full_name="acme/new")
    assert made.org == world.org and made.project == ours.project


def test_admin_refuses_a_repository_whose_project_is_of_another_org(world, staff):
    ours = factories.make_repo(world.org)
    theirs = factories.make_repo(world.outsider_org)
    form = _repository_form(
        ours, project=theirs.project_id, full_name="acme/new", url="https://github.com/acme/new"
    )
    response = staff.post("/admin/accounts/repository/add/", form)
    assert response.status_code == 200
    assert f"{theirs.project} belongs to {world.outsider_org}" in response.content.decode()
    assert not Repository.objects.filter(full_name="acme/new").exists()


def test_admin_change_cannot_move_a_repository_under_another_orgs_project(world, staff):
    ours = factories.make_repo(world.org)
    theirs = factories.make_repo(world.outsider_org)
    response = staff.post(
        f"/admin/accounts/repository/{ours.pk}/change/",
        _repository_form(ours, project=theirs.project_id),
    )
    assert response.status_code == 200
    ours.refresh_from_db()
    assert ours.project.org == ours.org == world.org


def _project_form(project: Project, **fields) -> dict:
    return {
        "org": project.org_id,
        "slug": project.slug,
        "name": project.name,
        "created_at_0": "2026-01-01",
        "created_at_1": "00:00:00",
        **fields,
    }


def test_admin_cannot_move_a_project_with_repositories_to_another_org(world, staff):
    project = factories.make_repo(world.org).project
    response = staff.post(
        f"/admin/accounts/project/{project.pk}/change/",
        _project_form(project, org=world.outsider_org.pk),
    )
    assert response.status_code == 200
    assert "cannot move" in response.content.decode()
    project.refresh_from_db()
    assert project.org == world.org


def test_admin_moves_a_project_without_repositories(world, staff):
    project = Project.objects.create(org=world.org, slug="empty", name="Empty")
    response = staff.post(
        f"/admin/accounts/project/{project.pk}/change/",
        _project_form(project, org=world.outsider_org.pk, name="Moved"),
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    project.refresh_from_db()
    assert project.org == world.outsider_org and project.name == "Moved"


def _org_form(slug: str, members: list[Membership], added_user: int | None = None) -> dict:
    form = {
        "slug": slug,
        "name": slug.title(),
        "created_at_0": "2026-01-01",
        "created_at_1": "00:00:00",
        "memberships-TOTAL_FORMS": str(len(members) + (1 if added_user else 0)),
        "memberships-INITIAL_FORMS": str(len(members)),
        "memberships-MIN_NUM_FORMS": "0",
        "memberships-MAX_NUM_FORMS": "1000",
    }
    for i, membership in enumerate(members):
        form[f"memberships-{i}-id"] = membership.pk
        form[f"memberships-{i}-org"] = membership.org_id
        form[f"memberships-{i}-user"] = membership.user_id
        form[f"memberships-{i}-created_at_0"] = "2026-01-01"
        form[f"memberships-{i}-created_at_1"] = "00:00:00"
    if added_user:
        i = len(members)
        form[f"memberships-{i}-user"] = added_user
        form[f"memberships-{i}-created_at_0"] = "2026-01-01"
        form[f"memberships-{i}-created_at_1"] = "00:00:00"
    return form


def test_admin_adds_an_org_with_a_new_member(world, staff):
    newcomer = factories.make_user(factories.make_org("elsewhere"))
    Membership.objects.filter(user=newcomer).delete()
    response = staff.post("/admin/accounts/org/add/", _org_form("fresh", [], newcomer.pk))
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Membership.objects.get(user=newcomer).org == Org.objects.get(slug="fresh")


def test_admin_members_inline_refuses_a_member_of_another_org(world, staff):
    form = _org_form("fresh", [], world.outsider_user.pk)
    response = staff.post("/admin/accounts/org/add/", form)
    assert response.status_code == 200
    assert not Org.objects.filter(slug="fresh").exists()
    assert Membership.objects.get(user=world.outsider_user).org == world.outsider_org


def test_admin_members_inline_removes_a_member(world, staff):
    member = factories.make_user(world.org)
    memberships = list(Membership.objects.filter(org=world.org).order_by("pk"))
    form = _org_form(world.org.slug, memberships)
    form["name"] = world.org.name
    gone = memberships.index(Membership.objects.get(user=member))
    form[f"memberships-{gone}-DELETE"] = "on"
    response = staff.post(f"/admin/accounts/org/{world.org.pk}/change/", form)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert not Membership.objects.filter(user=member).exists()
    assert Membership.objects.filter(user=world.user, org=world.org).exists()


def test_admin_deletes_a_repository(world, staff):
    repo = factories.make_repo(world.org)
    response = staff.post(f"/admin/accounts/repository/{repo.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302, response.content.decode()[:2000]
    assert not Repository.objects.filter(pk=repo.pk).exists()
    assert Project.objects.filter(pk=repo.project_id).exists()
