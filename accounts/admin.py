"""The admin of orgs, their members, projects, repositories and access tokens."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin as DjangoGroupAdmin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.models import Group, User
from django.db.models import QuerySet
from django.http import HttpRequest
from unfold.admin import ModelAdmin, TabularInline
from unfold.forms import AdminPasswordChangeForm, UserChangeForm, UserCreationForm

from accounts.models import AccessToken, Membership, Org, Project, Repository
from accounts.services import (
    access_token_revoke,
    access_token_update,
    membership_delete,
    membership_save,
    org_delete,
    org_save,
    project_check,
    project_delete,
    project_save,
    repository_check,
    repository_delete,
    repository_save,
)
from api.admin_writes import ServiceAdmin, service_errors


class MembershipInline(TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Org)
class OrgAdmin(ServiceAdmin):
    list_display = ["slug", "name", "created_at"]
    search_fields = ["slug", "name"]
    inlines = [MembershipInline]

    def save_with(self, obj: Org, cleaned: dict[str, Any]) -> Org:
        return org_save(org=obj, slug=cleaned["slug"], name=cleaned["name"])

    def delete_with(self, obj: Org) -> None:
        org_delete(org=obj)

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        """The members inline: each added, changed or removed membership is a service call."""
        memberships = formset.save(commit=False)
        for membership in formset.deleted_objects:
            membership_delete(membership=membership)
        for membership in memberships:
            membership_save(membership=membership, org=form.instance, user=membership.user)


class ProjectForm(forms.ModelForm):
    class Meta:
        model = Project
        fields = ["org", "slug", "name", "created_at"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if cleaned.get("org") is not None:
            with service_errors(self):
                project_check(project=self.instance, org=cleaned["org"])
        return cleaned


@admin.register(Project)
class ProjectAdmin(ServiceAdmin):
    form = ProjectForm
    list_display = ["slug", "name", "org", "created_at"]
    list_filter = ["org"]
    search_fields = ["slug", "name"]

    def save_with(self, obj: Project, cleaned: dict[str, Any]) -> Project:
        return project_save(
            project=obj, org=cleaned["org"], slug=cleaned["slug"], name=cleaned["name"]
        )

    def delete_with(self, obj: Project) -> None:
        project_delete(project=obj)


class RepositoryForm(forms.ModelForm):
    class Meta:
        model = Repository
        fields = ["org", "project", "full_name", "url", "default_branch", "created_at"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if cleaned.get("org") is not None and cleaned.get("project") is not None:
            with service_errors(self):
                repository_check(org=cleaned["org"], project=cleaned["project"])
        return cleaned


@admin.register(Repository)
class RepositoryAdmin(ServiceAdmin):
    form = RepositoryForm
    list_display = ["full_name", "project", "org", "default_branch", "url"]
    list_filter = ["org"]
    search_fields = ["full_name"]

    def save_with(self, obj: Repository, cleaned: dict[str, Any]) -> Repository:
        return repository_save(
            repository=obj,
            org=cleaned["org"],
            project=cleaned["project"],
            full_name=cleaned["full_name"],
            url=cleaned["url"],
            default_branch=cleaned["default_branch"],
        )

    def delete_with(self, obj: Repository) -> None:
        repository_delete(repository=obj)


@admin.action(description="Revoke the selected tokens")
def revoke_tokens(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> None:
    for token in queryset:
        access_token_revoke(token=token)


@admin.register(AccessToken)
class AccessTokenAdmin(ModelAdmin):
    list_display = ["prefix", "user", "label", "created_at", "expires_at", "revoked_at"]
    list_filter = ["revoked_at"]
    search_fields = ["user__username", "label", "prefix"]
    # The hash is useless to a person and the secret is never stored: tokens are made
    # with `manage.py create_access_token`, which prints the secret once.
    exclude = ["token_hash"]
    # Revoking is the action's (``access_token_revoke`` ends the token's streams).
    readonly_fields = ["prefix", "user", "created_at", "revoked_at"]
    actions = [revoke_tokens]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # A revoked token is kept, like every other credential: revoke, never delete.
        return False

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        access_token_update(
            token=obj, label=form.cleaned_data["label"], expires_at=form.cleaned_data["expires_at"]
        )
        obj.refresh_from_db()


# Django's own user and group admins, re-registered on the theme's classes so that every
# admin page is themed (their forms are unfold's subclasses of Django's).
admin.site.unregister(User)
admin.site.unregister(Group)


@admin.register(User)
class ThemedUserAdmin(DjangoUserAdmin, ModelAdmin):
    form = UserChangeForm
    add_form = UserCreationForm
    change_password_form = AdminPasswordChangeForm


@admin.register(Group)
class ThemedGroupAdmin(DjangoGroupAdmin, ModelAdmin):
    pass
