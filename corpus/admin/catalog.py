"""The admin of tools, skills and compactions."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.template.defaultfilters import filesizeformat
from django.utils.text import Truncator
from unfold.widgets import UnfoldAdminTextareaWidget

from api.admin_writes import ServiceAdmin
from corpus.admin.fields import MarkdownField, PrettyJSONField
from corpus.models import Compaction, Skill, Tool
from corpus.services import compaction_delete, skill_delete, skill_save, tool_delete, tool_save


class ToolForm(forms.ModelForm):
    input_schema = PrettyJSONField(
        widget=UnfoldAdminTextareaWidget(attrs={"rows": 18, "spellcheck": "false"}),
        help_text='A JSON Schema object for the tool\'s input, e.g. {"type": "object", '
        '"properties": {…}, "required": […]}.',
    )

    class Meta:
        model = Tool
        fields = ["org", "name", "description", "input_schema"]

    class Media:
        css = {"all": ["corpus/editor.css"]}

    def clean_input_schema(self) -> dict[str, Any]:
        schema = self.cleaned_data["input_schema"]
        if not isinstance(schema, dict):
            raise ValidationError(
                'The input schema must be a JSON object, like {"type": "object"}.',
                code="not_an_object",
            )
        return schema


@admin.register(Tool)
class ToolAdmin(ServiceAdmin):
    form = ToolForm
    list_display = ["name", "org", "short_description", "parameters"]
    list_filter = ["org"]
    search_fields = ["name", "description"]
    list_select_related = ["org"]
    ordering = ["org", "name"]

    def save_with(self, obj: Tool, cleaned: dict[str, Any]) -> Tool:
        return tool_save(
            tool=obj,
            org=cleaned["org"],
            name=cleaned["name"],
            description=cleaned["description"],
            input_schema=cleaned["input_schema"],
        )

    def delete_with(self, obj: Tool) -> None:
        tool_delete(tool=obj)

    @admin.display(description="description")
    def short_description(self, obj: Tool) -> str:
        return Truncator(obj.description).chars(90)

    @admin.display(description="parameters")
    def parameters(self, obj: Tool) -> str:
        properties = (
            obj.input_schema.get("properties") if isinstance(obj.input_schema, dict) else {}
        )
        return ", ".join(properties) if isinstance(properties, dict) else ""


class SkillForm(forms.ModelForm):
    body = MarkdownField()

    class Meta:
        model = Skill
        fields = ["org", "name", "domain", "description", "body"]


@admin.register(Skill)
class SkillAdmin(ServiceAdmin):
    form = SkillForm
    list_display = ["name", "domain", "org", "short_description", "size_display"]
    list_filter = ["domain", "org"]
    search_fields = ["name", "domain", "description", "body"]
    list_select_related = ["org"]
    ordering = ["org", "domain", "name"]

    def save_with(self, obj: Skill, cleaned: dict[str, Any]) -> Skill:
        return skill_save(
            skill=obj,
            org=cleaned["org"],
            name=cleaned["name"],
            domain=cleaned["domain"],
            description=cleaned["description"],
            body=cleaned["body"],
        )

    def delete_with(self, obj: Skill) -> None:
        skill_delete(skill=obj)

    @admin.display(description="description")
    def short_description(self, obj: Skill) -> str:
        return Truncator(obj.description).chars(90)

    @admin.display(description="size")
    def size_display(self, obj: Skill) -> str:
        return filesizeformat(len(obj.body.encode("utf-8")))


@admin.register(Compaction)
class CompactionAdmin(ServiceAdmin):
    """What each compaction folded, and the sizes before and after (read-only history;
    a fold can be deleted, through ``compaction_delete``)."""

    list_display = [
        "task_ref",
        "memory",
        "memory_version",
        "bytes_before",
        "bytes_after",
        "created_at",
    ]
    search_fields = ["task_ref"]
    readonly_fields = [f.name for f in Compaction._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def delete_with(self, obj: Compaction) -> None:
        compaction_delete(compaction=obj)
