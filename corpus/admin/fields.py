"""The admin's form fields: the markdown editor with its server-rendered preview, and
JSON shown indented."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.forms.fields import InvalidJSONInput
from django.forms.widgets import Script
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from corpus.errors import MarkdownTooLarge
from corpus.rendering import check_renderable


class MarkdownEditor(forms.Textarea):
    """A monospace textarea beside a pane showing the server's sanitized rendering.

    The pane is filled by ``corpus/editor.js`` from the staff-only preview endpoint, which
    runs ``corpus.rendering.render_markdown``: the browser never renders markdown itself,
    so what the preview shows is exactly what the API and the pages will serve.
    """

    class Media:
        css = {"all": ["corpus/editor.css"]}
        # An ES module: it imports CodeMirror from static/corpus/vendor/codemirror.js.
        js = [Script("corpus/editor.js", type="module")]

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        super().__init__(
            attrs={"class": "md-editor__source", "rows": 28, "spellcheck": "false", **(attrs or {})}
        )

    def render(
        self, name: str, value: Any, attrs: dict[str, Any] | None = None, renderer: Any = None
    ) -> SafeString:
        textarea = super().render(name, value, attrs, renderer)
        return format_html(
            '<div class="md-editor" data-preview-url="{}">'
            '<div class="md-editor__pane">{}'
            '<p class="md-editor__help" id="{}">Tab indents; press Escape, then Tab, to leave '
            "the editor. Ctrl+S (⌘S) saves and keeps editing.</p></div>"
            '<div class="md-editor__pane md-editor__pane--preview">'
            '<div class="md-editor__status" aria-live="polite">Preview</div>'
            '<p class="md-editor__notice" role="status" hidden></p>'
            '<div class="md-editor__preview" data-testid="preview"></div>'
            "</div></div>",
            reverse("admin:corpus_document_preview"),
            textarea,
            f"{(attrs or {}).get('id') or name}-help",
        )


class MarkdownField(forms.CharField):
    """Markdown from a textarea, kept as typed (no stripping) with LF line endings.

    Browsers send a textarea's lines with CRLF whatever they were loaded with; left as
    they come, every save of an unchanged body would store a new version.
    """

    widget = MarkdownEditor

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("strip", False)
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def to_python(self, value: Any) -> str:
        return super().to_python(value).replace("\r\n", "\n")

    def validate(self, value: Any) -> None:
        super().validate(value)
        try:
            check_renderable(value)
        except MarkdownTooLarge as exc:
            raise ValidationError(exc.detail, code="markdown_too_large")


class PrettyJSONField(forms.JSONField):
    """JSON shown indented, so a schema can be read and edited in a textarea."""

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, InvalidJSONInput):
            return value
        return json.dumps(value, indent=2, ensure_ascii=False, cls=self.encoder)
