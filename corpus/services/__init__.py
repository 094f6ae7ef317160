"""Every write of the corpus app: documents, their compaction, tools and skills."""

from corpus.services.catalog import (
    compaction_delete,
    skill_delete,
    skill_save,
    tool_delete,
    tool_save,
)
from corpus.services.compaction import memory_compact
from corpus.services.documents import (
    document_create,
    document_put,
    document_restore,
    document_save,
)

__all__ = [
    "compaction_delete",
    "document_create",
    "document_put",
    "document_restore",
    "document_save",
    "memory_compact",
    "skill_delete",
    "skill_save",
    "tool_delete",
    "tool_save",
]
