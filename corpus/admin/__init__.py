"""The admin's editors of documents, tools and skills. Importing the modules registers
their ``ModelAdmin``s, so admin autodiscovery (which imports ``corpus.admin``) finds them."""

from corpus.admin.catalog import CompactionAdmin, SkillAdmin, SkillForm, ToolAdmin, ToolForm
from corpus.admin.documents import DocumentAdmin, DocumentForm
from corpus.admin.fields import MarkdownEditor, MarkdownField, PrettyJSONField
from corpus.admin.versions import CompareForm

__all__ = [
    "CompactionAdmin",
    "CompareForm",
    "DocumentAdmin",
    "DocumentForm",
    "MarkdownEditor",
    "MarkdownField",
    "PrettyJSONField",
    "SkillAdmin",
    "SkillForm",
    "ToolAdmin",
    "ToolForm",
]
