from __future__ import annotations

from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Orgs, members and access tokens"

    def ready(self) -> None:
        from django.contrib.auth import get_user_model
        from django.db.models.signals import post_save

        from accounts.models import AccessToken
        from accounts.revocation import token_saved, user_saved

        # Deactivating a user or revoking a token, however it is done, ends their open
        # streams (a revoke is an auth event, not a business flow, so a signal fits).
        post_save.connect(user_saved, sender=get_user_model(), dispatch_uid="revocation.user")
        post_save.connect(token_saved, sender=AccessToken, dispatch_uid="revocation.token")
