"""The engineer's job sheet while on site: checklist ticks and notes are saved as they are made,
so nothing typed on a phone is lost if the job is left before it is completed."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from service_crm.models import WorkOrder
from service_crm.models.choices import WorkOrderStatus
from service_crm.services.audit import audit_record, snapshot

NOTES_MAX_CHARS = 20_000


@transaction.atomic(durable=True)
def work_order_progress_save(
    *, work_order: WorkOrder, actor: Any, done: Collection[int] | None = None,
    notes: str | None = None, now: dt.datetime | None = None,
) -> WorkOrder:
    """Save the checklist (``done``: indexes of the ticked items; every other item is unticked)
    and/or the notes of a work order in progress. ``None`` leaves that part as it is; saving
    what is already stored writes nothing.

    Audited, but not put on the account timeline: a tick is not a touchpoint, and the
    completion report carries the checklist to the timeline."""
    now = now or timezone.now()
    wo = WorkOrder.objects.select_for_update().get(pk=work_order.pk)
    if wo.status != WorkOrderStatus.IN_PROGRESS:
        raise ValidationError({"status": "Checklist and notes are saved while the job is in "
                                         "progress; start it first."})
    before = snapshot(wo)
    changed: list[str] = []
    if done is not None:
        items = list(wo.checklist or [])
        wanted = set(done)
        unknown = sorted(i for i in wanted if not 0 <= i < len(items))
        if unknown:
            raise ValidationError({"checklist": f"No checklist item {unknown[0]}; the list has "
                                                f"{len(items)} items."})
        ticked = [{**item, "done": i in wanted} for i, item in enumerate(items)]
        if ticked != items:
            wo.checklist = ticked
            changed.append("checklist")
    if notes is not None:
        if len(notes) > NOTES_MAX_CHARS:
            raise ValidationError({"notes": f"Notes are limited to {NOTES_MAX_CHARS} characters."})
        if notes != wo.notes:
            wo.notes = notes
            changed.append("notes")
    if changed:
        wo.save(update_fields=changed)
        audit_record(actor=actor, action="work_order.progress", obj=wo, before=before, at=now)
    return wo
