"""``manage.py crm_housekeeping``: one pass of the timed rules (the consumer also runs it)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from service_crm.services.housekeeping import housekeeping_run


class Command(BaseCommand):
    help = "Flag SLA breaches/risks, expire offers, close watched episodes, flag renewals."

    def handle(self, *args: Any, **opts: Any) -> None:
        self.stdout.write(str(housekeeping_run()))
