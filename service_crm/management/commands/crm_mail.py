"""``manage.py crm_mail``: send the emails the CRM owes, once or in a loop. A CRM consumer
started with ``--emails outbox`` leaves every email to this worker (several may run at once,
on other machines: each claims its rows with a lease); without one, housekeeping sends them."""

from __future__ import annotations

from service_crm.management.outbox_worker import OutboxWorkerCommand
from service_crm.services.notifications import notifications_send_due


class Command(OutboxWorkerCommand):
    help = ("Send due notification emails from the outbox (claimed with a lease, retried "
            "with backoff).")

    def one_pass(self, *, once: bool) -> str | None:
        report = notifications_send_due()
        if report.dispatched or once:
            return f"sent {report.dispatched}, pruned {report.pruned}"
        return None
