"""``manage.py crm_webhooks``: deliver due webhooks, once or in a loop (a dedicated worker keeps
delivery latency below the housekeeping interval; several may run at once)."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import close_old_connections

from service_crm.services.webhooks import webhook_deliver_due


class Command(BaseCommand):
    help = "POST due webhook deliveries from the outbox (signed, retried with backoff)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--every-s", type=float, default=0,
                            help="repeat this often; 0 = one pass (default)")

    def handle(self, *args: Any, **opts: Any) -> None:
        while True:
            close_old_connections()
            report = webhook_deliver_due()
            self.stdout.write(f"delivered {report.delivered}, failed {report.failed}, "
                              f"given up {report.dead}")
            if opts["every_s"] <= 0:
                return
            time.sleep(opts["every_s"])
