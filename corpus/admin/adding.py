"""Adding a document in the admin: a profile, project or repository document for a scope
that has none yet. Task, working and memory documents are the server's own (made with
their task or run), so they are not offered here."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from unfold.widgets import UnfoldAdminSelectWidget

from accounts.models import Membership
from corpus.admin.fields import MarkdownField
from corpus.models import Document, DocumentKind
from corpus.services.documents import scope_of

ADDABLE_KINDS = [
    (DocumentKind.PROFILE, "Profile (a person's preferences)"),
    (DocumentKind.PROJECT, "Project"),
    (DocumentKind.REPO, "Repository"),
]
# The one scope field each addable kind needs.
SCOPE_FIELD = {
    DocumentKind.PROFILE: "owner",
    DocumentKind.PROJECT: "project",
    DocumentKind.REPO: "repo",
}


class DocumentAddForm(forms.ModelForm):
    kind = forms.ChoiceField(
        choices=ADDABLE_KINDS, initial=DocumentKind.PROJECT, widget=UnfoldAdminSelectWidget
    )
    body = MarkdownField()

    class Meta:
        model = Document
        fields = ["org", "kind", "owner", "project", "repo", "title", "body"]
        help_texts = {
            "owner": "For a profile: whose preferences these are (a member of the org).",
            "project": "For a project document.",
            "repo": "For a repository document.",
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in ("owner", "project", "repo"):
            self.fields[name].required = False

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        org, kind = cleaned.get("org"), cleaned.get("kind")
        if org is None or kind not in SCOPE_FIELD:
            return cleaned
        needed = SCOPE_FIELD[kind]
        for name in ("owner", "project", "repo"):
            if name != needed:
                cleaned[name] = None  # only the kind's own scope is kept
        target = cleaned.get(needed)
        if target is None:
            self.add_error(needed, f"A {kind} document needs this.")
            return cleaned
        if needed == "owner":
            if not Membership.objects.filter(org=org, user=target).exists():
                self.add_error("owner", f"{target} is not a member of {org}.")
                return cleaned
        elif target.org_id != org.pk:
            self.add_error(needed, f"{target} belongs to another org.")
            return cleaned
        scope_key, path = scope_of(kind=kind, **{needed: target})
        existing = Document.objects.filter(org=org, kind=kind, scope_key=scope_key).first()
        if existing is not None:
            raise ValidationError(
                f"{target} already has its {path} (version {existing.version}): edit that one.",
                code="document_exists",
            )
        return cleaned
