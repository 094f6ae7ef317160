"""Every write of the corpus app: tenancy, documents and their compaction."""

from corpus.services.compaction import memory_compact
from corpus.services.documents import (
    document_create,
    document_put,
    document_restore,
    document_save,
)
from corpus.services.tenancy import (
    IssuedToken,
    access_token_create,
    access_token_revoke,
    member_ensure,
    org_ensure,
    project_ensure,
    repository_ensure,
)

__all__ = [
    "IssuedToken",
    "access_token_create",
    "access_token_revoke",
    "document_create",
    "document_put",
    "document_restore",
    "document_save",
    "member_ensure",
    "memory_compact",
    "org_ensure",
    "project_ensure",
    "repository_ensure",
]
