"""The Task admin: tasks are created and edited through the API's services."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html
from unfold.admin import ModelAdmin
from unfold.widgets import UnfoldAdminTextareaWidget

from api.errors import DomainError, describe
from api.problems import _flatten_errors
from tasks.models import Task
from tasks.serializers.inputs import TaskCreateIn
from tasks.services import task_create, task_update


class TaskForm(forms.ModelForm):
    """The admin's task form: validated by the API's own serializer (``TaskCreateIn``),
    saved by the API's services (``task_create``, ``task_update``)."""

    definition_of_done = forms.CharField(
        widget=UnfoldAdminTextareaWidget(attrs={"rows": 5}),
        required=False,
        help_text="One item per line.",
    )

    class Meta:
        model = Task
        fields = ["org", "owner", "project", "repo", "title", "prompt", "branch_scope"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            self.initial["definition_of_done"] = "\n".join(self.instance.definition_of_done)

    def clean_definition_of_done(self) -> list[str]:
        raw = self.cleaned_data.get("definition_of_done") or ""
        return [line.strip() for line in raw.splitlines() if line.strip()]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        instance = self.instance
        project = cleaned.get("project") or getattr(instance, "project", None)
        repo = cleaned.get("repo") or getattr(instance, "repo", None)
        data = {
            "title": cleaned.get("title", ""),
            "prompt": cleaned.get("prompt", ""),
            "definition_of_done": cleaned.get("definition_of_done", []),
            "project": project.slug if project else "",
            "repo": repo.full_name if repo else "",
            "branch_scope": cleaned.get("branch_scope", ""),
        }
        serializer = TaskCreateIn(data=data)
        if not serializer.is_valid():
            for name, messages in _flatten_errors(serializer.errors).items():
                field = name if name in self.fields and name not in self.errors else None
                for message in messages:
                    self.add_error(field, message)
        return cleaned


@admin.register(Task)
class TaskAdmin(ModelAdmin):
    """Tasks are created and edited here through the same services as the API; their
    runs, steps and history stay read-only. A task's document is derived from these
    fields (its ``## Notes`` section is the people's: see the document's admin)."""

    form = TaskForm
    list_display = [
        "public_id",
        "title",
        "status",
        "org",
        "repo",
        "lease_epoch",
        "updated_at",
        "pages",
    ]
    list_filter = ["status", "org"]
    search_fields = ["public_id", "title"]

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        # Where a task lives and who owns it are set once, at creation.
        return ["public_id", "org", "owner", "project", "repo", "status"] if obj else []

    def get_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        editable = ["title", "prompt", "definition_of_done", "branch_scope"]
        if obj is None:
            return ["org", "owner", "project", "repo", *editable]
        return ["public_id", "org", "owner", "project", "repo", "status", *editable]

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        data = form.cleaned_data
        try:
            if change:
                saved = task_update(
                    task=obj,
                    user=request.user,
                    changes={
                        name: data[name]
                        for name in ("title", "prompt", "definition_of_done", "branch_scope")
                    },
                )
            else:
                saved = task_create(
                    org=data["org"],
                    owner=data["owner"],
                    title=data["title"],
                    prompt=data["prompt"],
                    definition_of_done=data["definition_of_done"],
                    project=data["project"].slug,
                    repo=data["repo"].full_name,
                    branch_scope=data["branch_scope"] or "ether/*",
                )
        except DomainError as exc:
            # Raised past validation (a task closed meanwhile): nothing was stored.
            messages.error(request, describe(exc))
            raise _Refused from exc
        obj.pk = saved.pk
        obj.refresh_from_db()

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except _Refused:
            return HttpResponseRedirect(request.path)

    def view_on_site(self, obj: Task) -> str:
        """The admin's "View on site" button opens the task's live page."""
        return reverse("pages:task", args=[obj.public_id])

    @admin.display(description="Pages")
    def pages(self, obj: Task) -> str:
        return format_html(
            '<a href="{}">live</a> · <a href="{}">replay</a> · <a href="{}">memory</a>',
            reverse("pages:task", args=[obj.public_id]),
            reverse("pages:replay", args=[obj.public_id]),
            reverse("pages:compaction", args=[obj.public_id]),
        )


class _Refused(Exception):
    """A service refused the admin's save; its message is already queued."""
