"""The markdown context corpus: documents with every version kept, compactions of the
working notes, tools and skills. Everything here is scoped by an org (``accounts``)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from accounts.models import Org, Project, Repository
from api.ids import new_doc_id


class DocumentKind(models.TextChoices):
    PROFILE = "profile"
    PROJECT = "project"
    REPO = "repo"
    TASK = "task"
    WORKING = "working"
    MEMORY = "memory"


class Document(models.Model):
    """A markdown document of the context corpus; every version is kept.

    ``scope_key`` names what the document belongs to (a user, a project, a repository, a
    task or a run) so each scope has at most one document of a kind. Tasks and runs are
    referenced by public id: ``corpus`` sits below ``tasks`` and cannot point at them.
    """

    public_id = models.CharField(max_length=40, unique=True, default=new_doc_id, editable=False)
    org = models.ForeignKey(Org, on_delete=models.CASCADE, related_name="documents")
    kind = models.CharField(max_length=10, choices=DocumentKind.choices)
    path = models.CharField(max_length=120)
    scope_key = models.CharField(max_length=80)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True
    )
    project = models.ForeignKey(Project, on_delete=models.CASCADE, null=True, blank=True)
    repo = models.ForeignKey(Repository, on_delete=models.CASCADE, null=True, blank=True)
    task_ref = models.CharField(max_length=40, blank=True, db_index=True)
    run_ref = models.CharField(max_length=40, blank=True)
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    sha256 = models.CharField(max_length=64)
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["org", "kind", "scope_key"], name="one_document_per_scope"
            )
        ]
        indexes = [models.Index(fields=["org", "kind"])]

    def __str__(self) -> str:
        return f"{self.path} ({self.public_id})"

    @property
    def etag(self) -> str:
        return f'"{self.public_id[-8:]}-v{self.version}-{self.sha256[:16]}"'

    @property
    def size(self) -> int:
        return len(self.body.encode("utf-8"))


class DocumentVersion(models.Model):
    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    sha256 = models.CharField(max_length=64)
    note = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    # The body rendered once (corpus.rendering), so reads never render it again. Filled
    # when the version is written if the caller rendered before its transaction (the API),
    # else on the first read (versions written inside other flows' transactions, rows
    # from before this column). ``html_renderer`` names what produced it: HTML of another
    # renderer or policy (``rendering.RENDERER``), or none, is rendered again on read.
    html = models.TextField(blank=True, default="")
    html_renderer = models.CharField(max_length=100, blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["document", "version"], name="version_per_document")
        ]
        ordering = ["document", "version"]

    def __str__(self) -> str:
        return f"{self.document.path} v{self.version}"

    @property
    def body_bytes(self) -> int:
        return len(self.body.encode("utf-8"))


class Compaction(models.Model):
    """One fold of a task's older working notes into ``memory/{task_id}.md``.

    Kept for the replay pages: which document versions went in (``inputs``: a list of
    ``{doc_id, path, version, bytes, sha256}``), how big they were together, how big
    the memory came out and what of the inputs it kept and dropped. The latest row's
    inputs also tell the ``working`` slice which raw notes the memory already covers.
    """

    org = models.ForeignKey(Org, on_delete=models.CASCADE, related_name="compactions")
    task_ref = models.CharField(max_length=40)
    memory = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="compactions")
    memory_version = models.PositiveIntegerField()
    inputs = models.JSONField(default=list)
    bytes_before = models.PositiveBigIntegerField(help_text="UTF-8 bytes of the inputs together")
    bytes_after = models.PositiveIntegerField(help_text="UTF-8 bytes of the memory written")
    budget_bytes = models.PositiveIntegerField(help_text="The memory's share of the budget")
    summariser = models.CharField(max_length=64)
    # What the memory carries of the inputs (corpus.compaction.Summary): content bytes
    # kept and dropped, and each note that lost content ({doc_id, path, bytes, blocks}).
    # Null for a model's summary, which cannot be accounted block by block.
    kept_bytes = models.PositiveBigIntegerField(null=True, blank=True)
    dropped_bytes = models.PositiveBigIntegerField(null=True, blank=True)
    dropped = models.JSONField(default=list, blank=True)
    # Why the configured summariser did not write this memory ("openai failed: …"), or "".
    fallback = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["org", "task_ref", "-created_at"])]

    def __str__(self) -> str:
        size = f"{self.bytes_before} → {self.bytes_after} B"
        return f"{self.task_ref}: {len(self.inputs)} notes, {size}"


class Tool(models.Model):
    org = models.ForeignKey(Org, on_delete=models.CASCADE, related_name="tools")
    name = models.CharField(max_length=64)
    description = models.TextField()
    input_schema = models.JSONField(default=dict)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["org", "name"], name="tool_name_per_org")]

    def __str__(self) -> str:
        return self.name


class Skill(models.Model):
    org = models.ForeignKey(Org, on_delete=models.CASCADE, related_name="skills")
    name = models.CharField(max_length=64)
    domain = models.CharField(max_length=64, db_index=True)
    description = models.TextField()
    body = models.TextField(blank=True, help_text="Markdown")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["org", "name"], name="skill_name_per_org")]

    def __str__(self) -> str:
        return self.name
