"""Finding the right engineer for a job."""

from __future__ import annotations

import datetime as dt

from django.db.models import Count, Exists, OuterRef, Q

from service_crm.models import Engineer, Unavailability, WorkOrder
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
    """The least-loaded engineer in ``region`` with ``skill`` who is free during the window
    (:func:`engineer_is_free`: no absence and no busy job that overlaps it).

    Each overlap is one subquery on one row: ``exclude()`` across a multi-valued relation
    tests each condition against *any* row, so an engineer with one absence that ended before
    the window and another that starts after it was never proposed, although free."""
    absent = Unavailability.objects.filter(engineer=OuterRef("pk"), starts_at__lt=end,
                                           ends_at__gt=start)
    booked = WorkOrder.objects.filter(engineer=OuterRef("pk"), status__in=BUSY,
                                      scheduled_start__lt=end, scheduled_end__gt=start)
    candidates = (
        Engineer.objects.filter(region=region, available=True, skills__contains=[skill])
        .filter(~Exists(absent), ~Exists(booked))
        .annotate(load=Count("work_orders", filter=Q(work_orders__status__in=BUSY)))
        .order_by("load", "pk")
    )
    return candidates.first()
