from __future__ import annotations

from django.apps import AppConfig


class TasksConfig(AppConfig):
    name = "tasks"
    verbose_name = "Tasks, leases and events"

    def ready(self) -> None:
        from api.retention import register_purge
        from tasks.services.tickets import tickets_spent_or_expired

        # What the sweeper deletes (api/retention.py); the event log is never purged.
        register_purge("realtime_tickets", tickets_spent_or_expired)
        # WEBHOOK ATTEMPTS (issue 14): the app that owns the attempt model registers them
        # here, with the one call
        #     register_purge("webhook_attempts", lambda now: WebhookAttempt.objects.filter(
        #         created_at__lt=retention_cutoff(now)))
        # (retention_cutoff from api.retention: now - ETHER_RETENTION_DAYS).
