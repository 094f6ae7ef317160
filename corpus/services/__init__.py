"""Every write of the corpus app: tenancy and documents."""

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
    "org_ensure",
    "project_ensure",
    "repository_ensure",
]
