"""The versions of a document in the admin: the list, the diff of any two, a preview of
a version before it is restored, and the restore (a new version, through
``corpus.services.document_restore``)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Func, IntegerField
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse

from api.errors import NotFound, PreconditionFailed
from corpus.diffing import diff_texts
from corpus.models import Document, DocumentVersion
from corpus.rendering import render_for_display
from corpus.services import document_restore


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


class VersionsAdminMixin:
    """The versions views of ``DocumentAdmin`` (which routes them in ``get_urls``)."""

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
        """GET: the version as it would be restored (rendered, and its difference from the
        current text) with the button that restores it. POST: makes ``version`` current
        again as a new version, if nobody saved meanwhile."""
        document = self.get_object(request, unquote(object_id))
        if document is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_change_permission(request, document):
            raise PermissionDenied
        back = reverse("admin:corpus_document_versions", args=[document.pk])
        if request.method == "GET":
            return self._restore_preview(request, document, version, back)
        if request.method != "POST":
            return HttpResponseNotAllowed(["GET", "POST"])
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

    def _restore_preview(
        self, request: HttpRequest, document: Document, version: int, back: str
    ) -> HttpResponse:
        old = (
            DocumentVersion.objects.filter(document=document, version=version)
            .select_related("created_by")
            .first()
        )
        if old is None:
            messages.error(request, f"{document.path} has no version {version}.")
            return redirect(back)
        current = DocumentVersion.objects.select_related("created_by").get(
            document=document, version=document.version
        )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": document,
            "title": f"Restore version {version} of {document.path}?",
            "old": old,
            "current": current,
            "html": render_for_display(old.body),
            # From what is current now to what restoring makes current.
            "diff": diff_texts(
                current.body,
                old.body,
                old_label=f"now: {_version_label(current)}",
                new_label=f"after restoring: {_version_label(old)}",
            ),
            "etag": document.etag,
            "back": back,
        }
        return TemplateResponse(request, "admin/corpus/document/restore.html", context)
