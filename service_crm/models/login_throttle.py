"""Failed log-in counts, one row per (user name, client address) pair and per address."""

from __future__ import annotations

from django.db import models


class LoginThrottle(models.Model):
    """How many log-in attempts one key (a hashed user name + client address pair, or a
    hashed client address alone) has made without succeeding, and until when it must wait.
    Rows are updated under a row lock (web/login.py), so parallel attempts are counted
    exactly."""

    key = models.CharField(max_length=80, primary_key=True)
    failures = models.PositiveIntegerField(default=0)
    blocked_until = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["updated_at"], name="login_throttle_updated")]

    def __str__(self) -> str:
        return f"{self.key[:16]}… {self.failures}"
