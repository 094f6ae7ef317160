"""Domain exceptions of the context corpus (the base class and the generic kinds are in
``api.errors``)."""

from __future__ import annotations

from api.errors import DomainError


class DocumentExists(DomainError):
    code = "document_exists"
    title = "Document exists"


class MarkdownTooLarge(DomainError):
    """Markdown over ``ETHER_MAX_RENDER_BYTES``: refused before it is stored or rendered."""

    kind = "too_large"
    code = "markdown_too_large"
    title = "Markdown too large"


class DerivedDocument(DomainError):
    """A person's edit of the part of a task document the server derives from the task."""

    code = "derived_document"
    title = "Derived document"
