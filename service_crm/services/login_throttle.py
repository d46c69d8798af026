"""Log-in limiting that counts exactly and cannot be used to lock someone else out.

An attempt is *reserved* before the password is checked: under a row lock its keys' counts go
up by one, and an attempt that finds a key blocked is refused without checking anything. So
of 40 parallel wrong passwords exactly ``limit`` are checked, whatever the timing.

Keys are the (user name, client address) pair and the client address alone. A stranger's
failures block only the stranger's own pair and address, never the user's log-in from
elsewhere. When a key reaches its limit it is blocked for ``backoff_s``, and each further
attempt allowed after a block doubles the next block (up to ``max_backoff_s``). A success
clears the pair and takes its reservation back from the address; a key idle for ``window_s``
starts again from zero.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from dataclasses import dataclass

from django.db import connection, transaction
from django.utils import timezone

from service_crm.models import LoginThrottle


@dataclass(frozen=True)
class LoginLimits:
    per_pair: int = 5
    per_address: int = 30
    window_s: int = 900
    backoff_s: int = 60
    max_backoff_s: int = 3600


@dataclass(frozen=True)
class LoginDecision:
    allowed: bool
    retry_after_s: int = 0


def _key(kind: str, value: str) -> str:
    # Hashed: user names and addresses do not belong in the table in clear text.
    return f"{kind}:" + hashlib.sha256(value.encode()).hexdigest()[:64]


def pair_key(*, username: str, ip: str) -> str:
    return _key("pair", username.casefold() + "\n" + ip)


def address_key(*, ip: str) -> str:
    return _key("ip", ip)


def _block_s(failures: int, limit: int, limits: LoginLimits) -> float:
    return float(min(limits.backoff_s * 2 ** min(failures - limit, 30), limits.max_backoff_s))


@transaction.atomic
def login_attempt_begin(*, username: str, ip: str, limits: LoginLimits,
                        now: dt.datetime | None = None) -> LoginDecision:
    """Reserve one attempt for (username, ip), or refuse it while either key is blocked."""
    now = now or timezone.now()
    keys = {pair_key(username=username, ip=ip): limits.per_pair,
            address_key(ip=ip): limits.per_address}
    with connection.cursor() as cur:
        for key in sorted(keys):  # one lock order everywhere: no deadlock between attempts
            cur.execute("INSERT INTO service_crm_loginthrottle (key, failures, updated_at) "
                        "VALUES (%s, 0, %s) ON CONFLICT (key) DO NOTHING", [key, now])
    rows = {r.key: r for r in LoginThrottle.objects.select_for_update()
            .filter(key__in=list(keys)).order_by("key")}
    stale = now - dt.timedelta(seconds=limits.window_s)
    for row in rows.values():
        if row.updated_at < stale and (row.blocked_until is None or row.blocked_until < stale):
            row.failures, row.blocked_until = 0, None
    waits = [(row.blocked_until - now).total_seconds() for row in rows.values()
             if row.blocked_until is not None and row.blocked_until > now]
    if waits:
        return LoginDecision(allowed=False, retry_after_s=math.ceil(max(waits)))
    for key, row in rows.items():
        row.failures += 1
        row.updated_at = now
        limit = keys[key]
        if row.failures >= limit:
            # Blocked in advance: should this attempt fail, the next one waits. A success
            # clears the pair's block.
            row.blocked_until = now + dt.timedelta(seconds=_block_s(row.failures, limit, limits))
        row.save(update_fields=["failures", "blocked_until", "updated_at"])
    return LoginDecision(allowed=True)


@transaction.atomic
def login_attempt_succeeded(*, username: str, ip: str, limits: LoginLimits) -> None:
    """The reserved attempt was the right password: forget the pair, and give the address
    its reservation back."""
    LoginThrottle.objects.filter(key=pair_key(username=username, ip=ip)).delete()
    with connection.cursor() as cur:
        cur.execute("UPDATE service_crm_loginthrottle SET failures = GREATEST(failures - 1, 0), "
                    "blocked_until = CASE WHEN failures - 1 < %s THEN NULL "
                    "ELSE blocked_until END WHERE key = %s",
                    [limits.per_address, address_key(ip=ip)])


def login_throttle_prune(*, window_s: int, now: dt.datetime | None = None) -> int:
    """Delete the rows a new attempt would start from zero anyway (idle for ``window_s`` and
    not blocked within it), so guessing many user names cannot grow the table for ever."""
    now = now or timezone.now()
    stale = now - dt.timedelta(seconds=window_s)
    deleted, _ = (LoginThrottle.objects.filter(updated_at__lt=stale)
                  .exclude(blocked_until__gte=stale).delete())
    return int(deleted)
