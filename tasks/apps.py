from __future__ import annotations

from django.apps import AppConfig


class TasksConfig(AppConfig):
    name = "tasks"
    verbose_name = "Tasks, leases and events"

    def ready(self) -> None:
        from api.retention import register_purge
        from tasks.services.tickets import tickets_spent_or_expired
        from tasks.webhooks.services import webhook_attempts_past_retention

        # What the sweeper deletes (api/retention.py); the event log is never purged.
        register_purge("realtime_tickets", tickets_spent_or_expired)
        # Webhook attempts past ETHER_RETENTION_DAYS (the deliveries themselves are kept).
        register_purge("webhook_attempts", webhook_attempts_past_retention)
