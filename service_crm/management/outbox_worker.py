"""The loop of a worker that drains an outbox (``crm_mail``, ``crm_webhooks``): one pass, or one
every ``--every-s`` seconds, with the connection renewed before each."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import close_old_connections


class OutboxWorkerCommand(BaseCommand):
    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--every-s", type=float, default=0,
                            help="repeat this often; 0 = one pass (default)")

    def one_pass(self, *, once: bool) -> str | None:
        """Work through what is due; the line to print, if any (`once`: a single pass)."""
        raise NotImplementedError

    def handle(self, *args: Any, **opts: Any) -> None:
        every = opts["every_s"]
        if not every >= 0:  # NaN included
            raise CommandError(f"--every-s must be a number >= 0, got {every}")
        while True:
            close_old_connections()
            line = self.one_pass(once=every <= 0)
            if line:
                self.stdout.write(line)
            if every <= 0:
                return
            time.sleep(every)
