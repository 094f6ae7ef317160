"""The admin of orgs, their members, projects, repositories and access tokens."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts.models import AccessToken, Membership, Org, Project, Repository
from accounts.services import access_token_revoke, access_token_update


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Org)
class OrgAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "created_at"]
    search_fields = ["slug", "name"]
    inlines = [MembershipInline]


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "org", "created_at"]
    list_filter = ["org"]
    search_fields = ["slug", "name"]


@admin.register(Repository)
class RepositoryAdmin(admin.ModelAdmin):
    list_display = ["full_name", "project", "org", "default_branch", "url"]
    list_filter = ["org"]
    search_fields = ["full_name"]


@admin.action(description="Revoke the selected tokens")
def revoke_tokens(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> None:
    for token in queryset:
        access_token_revoke(token=token)


@admin.register(AccessToken)
class AccessTokenAdmin(admin.ModelAdmin):
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
