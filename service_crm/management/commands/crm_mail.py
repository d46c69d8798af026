"""``manage.py crm_mail``: send the emails the CRM owes, once or in a loop. A CRM consumer
started with ``--emails outbox`` leaves every email to this worker (several may run at once,
on other machines: each claims its rows with a lease); without one, housekeeping sends them."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import close_old_connections

from service_crm.services.notifications import notifications_send_due


class Command(BaseCommand):
    help = ("Send due notification emails from the outbox (claimed with a lease, retried "
            "with backoff).")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--every-s", type=float, default=0,
                            help="repeat this often; 0 = one pass (default)")

    def handle(self, *args: Any, **opts: Any) -> None:
        every = opts["every_s"]
        if not every >= 0:
            raise CommandError(f"--every-s must be a number >= 0, got {every}")
        while True:
            close_old_connections()
            report = notifications_send_due()
            if report.dispatched or every <= 0:
                self.stdout.write(f"sent {report.dispatched}, pruned {report.pruned}")
            if every <= 0:
                return
            time.sleep(every)
