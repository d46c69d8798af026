"""The rules every outbox here shares (webhook deliveries, notifications): which rows are due
and who holds them, and what a failed attempt does.

A row is *pending* with a ``next_attempt_at`` and an optional ``leased_until``; a worker
claims due rows under ``SKIP LOCKED`` by setting the lease, so concurrent workers never take
the same row and one that dies only delays it. A failed attempt counts, releases the lease and
waits out the backoff (``conf.webhook_backoff``), and after ``conf.webhook_max_attempts()`` the
row is given up ("dead") and audited.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import Model, Q

from service_crm import conf
from service_crm.models.choices import DeliveryStatus
from service_crm.services.audit import audit_record

D = DeliveryStatus


def claim_due(model: type[Model], *, now: dt.datetime, limit: int,
              lease: dt.datetime) -> list[int]:
    """Lease up to `limit` due rows of `model` until `lease`, oldest due first; returns their
    ids. Run it inside a transaction (the row locks end with it)."""
    ids = list(model._default_manager.select_for_update(skip_locked=True)
               .filter(status=D.PENDING, next_attempt_at__lte=now)
               .filter(Q(leased_until__isnull=True) | Q(leased_until__lt=now))
               .order_by("next_attempt_at", "pk").values_list("pk", flat=True)[:limit])
    model._default_manager.filter(pk__in=ids).update(leased_until=lease)
    return ids


def retry_or_give_up(row: Any, *, error: str, now: dt.datetime, dead_action: str) -> str:
    """After a failed attempt at an outbox row: count it, release the lease, and either
    schedule the next attempt after the backoff or, after ``conf.webhook_max_attempts()``,
    give it up ("dead", audited as `dead_action`). The caller holds the row locked in a
    transaction; returns the new status."""
    row.attempts += 1
    row.leased_until = None
    row.last_error = error[:300]
    if row.attempts >= conf.webhook_max_attempts():
        row.status = D.DEAD
        audit_record(actor=None, action=dead_action, obj=row, before=None, at=now)
    else:
        row.next_attempt_at = now + conf.webhook_backoff(row.attempts)
    row.save()
    return str(row.status)
