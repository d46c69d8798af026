"""``manage.py crm_webhooks``: deliver due webhooks, once or in a loop (a dedicated worker keeps
delivery latency below the housekeeping interval; several may run at once)."""

from __future__ import annotations

from service_crm.management.outbox_worker import OutboxWorkerCommand
from service_crm.services.webhooks import webhook_deliver_due


class Command(OutboxWorkerCommand):
    help = "POST due webhook deliveries from the outbox (signed, retried with backoff)."

    def one_pass(self, *, once: bool) -> str | None:
        report = webhook_deliver_due()
        return (f"delivered {report.delivered}, failed {report.failed}, "
                f"given up {report.dead}")
