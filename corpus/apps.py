from __future__ import annotations

from django.apps import AppConfig


class CorpusConfig(AppConfig):
    name = "corpus"
    verbose_name = "Corpus and tenancy"

    def ready(self) -> None:
        # Registers the OpenAPI extensions of our authentication classes.
        from django.contrib.auth import get_user_model
        from django.db.models.signals import post_save

        from corpus.http import schema  # noqa: F401
        from corpus.models import AccessToken
        from corpus.revocation import token_saved, user_saved

        # Deactivating a user, however it is done, ends their open streams.
        post_save.connect(user_saved, sender=get_user_model(), dispatch_uid="revocation.user")
        post_save.connect(token_saved, sender=AccessToken, dispatch_uid="revocation.token")
