"""What an engineer recorded on a work order, as the desk's and the field's pages show it."""

from __future__ import annotations

from dataclasses import dataclass

from service_crm.models import WorkOrder, WorkOrderPart


@dataclass(frozen=True)
class WorkOrderRecord:
    """Parts used (with part and warehouse), checklist items not done, time on site."""

    parts: list[WorkOrderPart]
    skipped: int
    time_on_site: str


def work_order_record_get(*, work_order: WorkOrder) -> WorkOrderRecord:
    """The record of `work_order` (the caller has already checked the user may see it)."""
    hours, minutes = divmod(work_order.time_spent_min or 0, 60)
    return WorkOrderRecord(
        parts=list(work_order.parts_used.select_related("part", "warehouse")),
        skipped=sum(1 for item in work_order.checklist or []
                    if isinstance(item, dict) and not item.get("done")),
        time_on_site=f"{hours} h {minutes:02d} min" if hours else f"{minutes} min",
    )
