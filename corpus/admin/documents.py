"""The admin's document editor: edit with a live preview, compare versions, restore one.
Every write goes through ``corpus.services``."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.template.defaultfilters import filesizeformat
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.views.decorators.http import require_POST
from unfold.admin import ModelAdmin

from api.errors import PreconditionFailed
from api.problems import json_problem
from corpus.admin.adding import DocumentAddForm
from corpus.admin.fields import MarkdownField
from corpus.admin.versions import VersionsAdminMixin
from corpus.derived import derived_check
from corpus.errors import DerivedDocument, DocumentExists, MarkdownTooLarge
from corpus.models import Document, DocumentKind
from corpus.rendering import render_markdown
from corpus.services import document_create, document_save
from corpus.stripping import removed_markup, stripped_notice


def _stale_message(document: Document) -> str:
    who = document.updated_by or "Someone"
    return (
        f"{who} saved version {document.version} since you opened this; "
        "your text is kept below, reload to merge."
    )


class DocumentForm(forms.ModelForm):
    body = MarkdownField()
    # The ETag of the version this form was opened on: the save is refused if the
    # document has moved on since, instead of silently overwriting someone's edit.
    etag = forms.CharField(widget=forms.HiddenInput, required=False)

    class Meta:
        model = Document
        fields = ["title", "body"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            self.fields["etag"].initial = self.instance.etag

    def clean_body(self) -> str:
        body = self.cleaned_data["body"]
        # A body stored with CRLF comes back as LF: that alone is no edit.
        if body == self.instance.body.replace("\r\n", "\n"):
            return self.instance.body
        return body

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        # self.instance still holds the row as this request loaded it (the form's
        # values are copied onto it only after clean), so this is the current ETag.
        if cleaned.get("etag") != self.instance.etag:
            raise ValidationError(_stale_message(self.instance), code="stale")
        body, title = cleaned.get("body"), cleaned.get("title")
        if self.instance.kind == DocumentKind.TASK and body is not None and title is not None:
            try:
                derived_check(
                    task_ref=self.instance.task_ref,
                    path=self.instance.path,
                    current=self.instance.body,
                    new=body,
                    title_changed=title != self.instance.title,
                )
            except DerivedDocument as exc:
                raise ValidationError(exc.detail, code="derived_document") from None
        return cleaned


@admin.register(Document)
class DocumentAdmin(VersionsAdminMixin, ModelAdmin):
    """Documents are edited here but always written by ``corpus.services``.

    The admin adds profile, project and repository documents (``DocumentAddForm``); the
    server makes the others with their task or run. Nothing is deleted: every version
    stays kept.
    """

    form = DocumentForm
    # Few, short columns, so the list fits a 1440 px screen beside the sidebar.
    list_display = ["path", "title", "kind", "scope", "version", "updated", "size_display"]
    list_display_links = ["path", "title"]
    list_filter = ["kind", "org"]
    search_fields = ["title", "path", "body"]
    list_select_related = ["org", "updated_by", "owner", "project__org", "repo"]
    ordering = ["-updated_at"]
    readonly_fields = [
        "public_id",
        "org",
        "kind",
        "path",
        "scope",
        "version",
        "size_display",
        "updated_by",
        "updated_at",
        "created_at",
        "sha256",
        "versions_link",
    ]
    fieldsets = [
        (None, {"fields": ["title", "body", "etag"]}),
        (
            "Version",
            {
                "fields": [
                    ("version", "size_display"),
                    ("updated_by", "updated_at"),
                    "versions_link",
                ]
            },
        ),
        (
            "Where it belongs",
            {"fields": [("kind", "path"), "scope", "org", "public_id", "created_at", "sha256"]},
        ),
    ]

    def get_form(self, request: HttpRequest, obj: Document | None = None, **kwargs: Any) -> Any:
        if obj is None:
            kwargs["form"] = DocumentAddForm
        return super().get_form(request, obj, **kwargs)

    def get_fieldsets(self, request: HttpRequest, obj: Document | None = None) -> Any:
        if obj is None:
            return [
                (None, {"fields": ["org", "kind", "owner", "project", "repo", "title", "body"]})
            ]
        return super().get_fieldsets(request, obj)

    def get_readonly_fields(self, request: HttpRequest, obj: Document | None = None) -> Any:
        return [] if obj is None else super().get_readonly_fields(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Document | None = None) -> bool:
        return False

    @admin.display(description="scope")
    def scope(self, obj: Document) -> str:
        """Whose document it is, in the org; a task's or run's id is already its path."""
        if obj.kind == DocumentKind.PROFILE:
            return f"{obj.org.slug} · user {obj.owner}"
        if obj.kind == DocumentKind.PROJECT:
            return f"{obj.org.slug} · project {obj.project}"
        if obj.kind == DocumentKind.REPO:
            return f"{obj.org.slug} · repo {obj.repo}"
        return f"{obj.org.slug} · {obj.kind}"

    @admin.display(description="updated", ordering="updated_at")
    def updated(self, obj: Document) -> str:
        return f"{obj.updated_at:%Y-%m-%d %H:%M} · {obj.updated_by or '—'}"

    @admin.display(description="size")
    def size_display(self, obj: Document) -> str:
        return filesizeformat(obj.size)

    @admin.display(description="history")
    def versions_link(self, obj: Document) -> str:
        url = reverse("admin:corpus_document_versions", args=[obj.pk])
        return format_html(
            '<a class="ether-link" href="{}">All versions: compare and restore</a>', url
        )

    def save_model(self, request: HttpRequest, obj: Document, form: Any, change: bool) -> None:
        if not change:
            self._add(request, obj, form.cleaned_data)
            return
        opened = obj.version
        saved = document_save(
            document=obj,
            body=form.cleaned_data["body"],
            title=form.cleaned_data["title"],
            user=request.user,
            if_match=form.cleaned_data["etag"],
            note="edited in the admin",
        )
        obj.refresh_from_db()
        if saved.version == opened:
            self._say(
                request, messages.INFO, f"Nothing changed: {obj.path} is still version {opened}."
            )
        else:
            self._say(request, messages.SUCCESS, f"Saved {obj.path} as version {saved.version}.")
        self._warn_stripped(request, obj.body)

    def _add(self, request: HttpRequest, obj: Document, cleaned: dict[str, Any]) -> None:
        scope = {name: cleaned[name] for name in ("owner", "project", "repo") if cleaned[name]}
        try:
            created = document_create(
                org=cleaned["org"],
                kind=cleaned["kind"],
                body=cleaned["body"],
                title=cleaned["title"],
                user=request.user,
                **scope,
            )
        except DocumentExists as exc:  # added by someone else since the form was checked
            messages.error(request, exc.detail)
            raise _Refused from exc
        obj.pk = created.pk
        obj.refresh_from_db()
        self._say(request, messages.SUCCESS, f"Added {obj.path} as version 1.")
        self._warn_stripped(request, obj.body)

    def _say(self, request: HttpRequest, level: int, text: str) -> None:
        """The save's one message: Django's own "… was changed successfully" is replaced by
        it in ``message_user`` instead of being shown beside it."""
        request._document_message = (level, text)  # type: ignore[attr-defined]

    def message_user(
        self,
        request: HttpRequest,
        message: str,
        level: int = messages.INFO,
        *args: Any,
        **kwargs: Any,
    ) -> None:
        own = getattr(request, "_document_message", None)
        if own is not None and level == messages.SUCCESS:
            level, message = own
            request._document_message = None  # type: ignore[attr-defined]
        super().message_user(request, message, level, *args, **kwargs)
        warning = getattr(request, "_document_warning", None)
        if warning:  # after the save's message, which says what happened first
            request._document_warning = None  # type: ignore[attr-defined]
            super().message_user(request, warning, messages.WARNING)

    def _warn_stripped(self, request: HttpRequest, body: str) -> None:
        """The save's second message, when the sanitizer keeps part of the body off the
        pages: the same notice as the editor's preview."""
        removed = removed_markup(body)
        if removed:
            request._document_warning = stripped_notice(removed)  # type: ignore[attr-defined]

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
        except PreconditionFailed:
            # Someone saved between this form's validation and its save (the service
            # checks the ETag again under the row lock). The transaction rolled back;
            # validating again now sees their version and shows the form error.
            return super().changeform_view(request, object_id, form_url, extra_context)

    def get_urls(self) -> list[URLPattern]:
        wrap = self.admin_site.admin_view
        return [
            path("preview/", wrap(require_POST(self.preview_view)), name="corpus_document_preview"),
            path(
                "<path:object_id>/versions/",
                wrap(self.versions_view),
                name="corpus_document_versions",
            ),
            path(
                "<path:object_id>/versions/<int:version>/restore/",
                wrap(self.restore_view),
                name="corpus_document_restore",
            ),
            *super().get_urls(),
        ]

    def preview_view(self, request: HttpRequest) -> JsonResponse:
        """The sanitized HTML of the posted markdown: the editor's live preview."""
        try:
            text = request.POST.get("text", "")
            html = render_markdown(text)
            removed = removed_markup(text)
            notice = stripped_notice(removed) if removed else ""
            return JsonResponse({"html": html, "removed": removed, "notice": notice})
        except MarkdownTooLarge as exc:
            return json_problem(413, exc.code, exc.title, exc.detail)


class _Refused(Exception):
    """A service refused the admin's add; its message is already queued."""
