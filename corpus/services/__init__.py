"""Every write of the corpus app: documents and their compaction."""

from corpus.services.compaction import memory_compact
from corpus.services.documents import (
    document_create,
    document_put,
    document_restore,
    document_save,
)
from corpus.services.promotion import repo_memory_promote

__all__ = [
    "document_create",
    "document_put",
    "document_restore",
    "document_save",
    "memory_compact",
    "repo_memory_promote",
]
