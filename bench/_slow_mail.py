"""An email backend for benchmarks: keeps messages in memory like Django's locmem backend,
after waiting ``BENCH_MAIL_DELAY_MS`` per message (a mail server's round trip)."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any

from django.core.mail.backends.locmem import EmailBackend as LocmemBackend


class EmailBackend(LocmemBackend):
    def send_messages(self, messages: Sequence[Any]) -> int:
        time.sleep(float(os.environ.get("BENCH_MAIL_DELAY_MS", "0")) / 1000 * len(messages))
        return int(super().send_messages(messages))
