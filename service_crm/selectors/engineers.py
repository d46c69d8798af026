"""Finding the right engineer for a job."""

from __future__ import annotations

import datetime as dt

from django.db.models import Count, Q

from service_crm.models import Engineer
from service_crm.models.choices import WorkOrderStatus

BUSY = (WorkOrderStatus.SCHEDULED, WorkOrderStatus.IN_PROGRESS)


def engineer_is_free(*, engineer: Engineer, start: dt.datetime, end: dt.datetime) -> bool:
    """Dispatchable, not absent and not booked on another job during [start, end)."""
    if not engineer.available:
        return False
    if engineer.absences.filter(starts_at__lt=end, ends_at__gt=start).exists():
        return False
    return not engineer.work_orders.filter(
        status__in=BUSY, scheduled_start__lt=end, scheduled_end__gt=start
    ).exists()


def engineer_match(
    *, skill: str, region: str, start: dt.datetime, end: dt.datetime
) -> Engineer | None:
    """The least-loaded engineer in ``region`` with ``skill`` who is free during the window."""
    candidates = (
        Engineer.objects.filter(region=region, available=True, skills__contains=[skill])
        .exclude(absences__starts_at__lt=end, absences__ends_at__gt=start)
        .exclude(work_orders__status__in=BUSY, work_orders__scheduled_start__lt=end,
                 work_orders__scheduled_end__gt=start)
        .annotate(load=Count("work_orders", filter=Q(work_orders__status__in=BUSY)))
        .order_by("load", "pk")
    )
    return candidates.first()
