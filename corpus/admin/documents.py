"""The admin's document editor: edit with a live preview, compare versions, restore one.
Every write goes through ``corpus.services``."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Func, IntegerField
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.template.defaultfilters import filesizeformat
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.views.decorators.http import require_POST
from unfold.admin import ModelAdmin

from api.errors import NotFound, PreconditionFailed
from api.problems import json_problem
from corpus.admin.fields import MarkdownField
from corpus.derived import derived_check
from corpus.diffing import diff_texts
from corpus.errors import DerivedDocument, MarkdownTooLarge
from corpus.models import Document, DocumentKind, DocumentVersion
from corpus.rendering import render_markdown
from corpus.services import document_restore, document_save


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


class OctetLength(Func):
    """The size of a text column in bytes, computed by the database."""

    function = "OCTET_LENGTH"
    output_field = IntegerField()

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, list[Any]]:
        return self.as_sql(
            compiler, connection, template="LENGTH(CAST(%(expressions)s AS BLOB))", **extra
        )


class CompareForm(forms.Form):
    a = forms.TypedChoiceField(coerce=int, label="From")
    b = forms.TypedChoiceField(coerce=int, label="To")

    def __init__(self, *args: Any, versions: list[int], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choices = [(v, f"v{v}") for v in versions]
        self.fields["a"].choices = choices
        self.fields["b"].choices = choices


def _version_label(version: DocumentVersion) -> str:
    who = version.created_by or "unknown"
    return f"v{version.version} · {who} · {version.created_at:%Y-%m-%d %H:%M} UTC"


@admin.register(Document)
class DocumentAdmin(ModelAdmin):
    """Documents are edited here but always written by ``corpus.services``.

    They are created by the API and the services (each kind has its own scope rules),
    so the admin neither adds nor deletes them: every version stays kept.
    """

    form = DocumentForm
    list_display = [
        "kind",
        "path",
        "scope",
        "title",
        "version",
        "updated_by",
        "updated_at",
        "size_display",
        "org",
    ]
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

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Document | None = None) -> bool:
        return False

    @admin.display(description="scope")
    def scope(self, obj: Document) -> str:
        if obj.kind == DocumentKind.PROFILE:
            return f"user {obj.owner}"
        if obj.kind == DocumentKind.PROJECT:
            return f"project {obj.project}"
        if obj.kind == DocumentKind.REPO:
            return f"repo {obj.repo}"
        if obj.kind == DocumentKind.WORKING:
            return f"run {obj.run_ref}"
        return f"task {obj.task_ref}"

    @admin.display(description="size")
    def size_display(self, obj: Document) -> str:
        return filesizeformat(obj.size)

    @admin.display(description="history")
    def versions_link(self, obj: Document) -> str:
        url = reverse("admin:corpus_document_versions", args=[obj.pk])
        return format_html('<a href="{}">All versions: compare and restore</a>', url)

    def save_model(self, request: HttpRequest, obj: Document, form: Any, change: bool) -> None:
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
            messages.info(request, f"Nothing changed: {obj.path} is still version {opened}.")
        else:
            messages.success(request, f"Saved {obj.path} as version {saved.version}.")

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
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
                wrap(require_POST(self.restore_view)),
                name="corpus_document_restore",
            ),
            *super().get_urls(),
        ]

    def preview_view(self, request: HttpRequest) -> JsonResponse:
        """The sanitized HTML of the posted markdown: the editor's live preview."""
        try:
            return JsonResponse({"html": render_markdown(request.POST.get("text", ""))})
        except MarkdownTooLarge as exc:
            return json_problem(413, exc.code, exc.title, exc.detail)

    def versions_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        document = self.get_object(request, unquote(object_id))
        if document is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_view_or_change_permission(request, document):
            raise PermissionDenied
        versions = list(
            document.versions.select_related("created_by")
            .defer("body")
            .annotate(size=OctetLength("body"))
            .order_by("-version")
        )
        numbers = [v.version for v in versions]
        if "a" in request.GET or "b" in request.GET:
            compare = CompareForm(request.GET, versions=numbers)
        else:
            # By default, what the latest save changed.
            latest = numbers[:2]
            compare = CompareForm(
                {"a": latest[-1], "b": latest[0]} if latest else None, versions=numbers
            )
        diff = old = new = None
        if compare.is_valid():
            pair = DocumentVersion.objects.filter(
                document=document,
                version__in=[compare.cleaned_data["a"], compare.cleaned_data["b"]],
            ).select_related("created_by")
            by_number = {v.version: v for v in pair}
            old, new = by_number[compare.cleaned_data["a"]], by_number[compare.cleaned_data["b"]]
            diff = diff_texts(
                old.body, new.body, old_label=_version_label(old), new_label=_version_label(new)
            )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": document,
            "title": f"Versions of {document.path}",
            "subtitle": document.title,
            "versions": versions,
            "compare": compare,
            "diff": diff,
            "old": old,
            "new": new,
            "etag": document.etag,
            "can_restore": self.has_change_permission(request, document),
        }
        return TemplateResponse(request, "admin/corpus/document/versions.html", context)

    def restore_view(self, request: HttpRequest, object_id: str, version: int) -> HttpResponse:
        """Makes ``version`` current again as a new version, if nobody saved meanwhile."""
        document = self.get_object(request, unquote(object_id))
        if document is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_change_permission(request, document):
            raise PermissionDenied
        back = reverse("admin:corpus_document_versions", args=[document.pk])
        try:
            restored = document_restore(
                document=document,
                version=version,
                user=request.user,
                if_match=request.POST.get("etag", ""),
            )
        except PreconditionFailed:
            current = Document.objects.select_related("updated_by").get(pk=document.pk)
            messages.error(
                request,
                f"{current.updated_by or 'Someone'} saved version {current.version} since you "
                f"opened this page; nothing was restored. Check the list and try again.",
            )
            return redirect(back)
        except NotFound as exc:
            messages.error(request, exc.detail)
            return redirect(back)
        if restored.version == document.version:
            messages.info(request, f"Version {version} is the same as the current one.")
        else:
            message = f"Restored version {version} as version {restored.version}."
            self.log_change(request, restored, message)
            messages.success(request, message)
        return redirect(back)
