"""The admin of orgs, their members, projects, repositories and access tokens."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts.models import AccessToken, Membership, Org, Project, Repository
from accounts.services import access_token_revoke


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
    readonly_fields = ["prefix", "user", "created_at"]
    actions = [revoke_tokens]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
