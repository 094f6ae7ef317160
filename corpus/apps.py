from __future__ import annotations

from django.apps import AppConfig


class CorpusConfig(AppConfig):
    name = "corpus"
    verbose_name = "Corpus and tenancy"

    def ready(self) -> None:
        # Registers the OpenAPI extensions of our authentication classes.
        from corpus.http import schema  # noqa: F401
