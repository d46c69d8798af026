"""Entitlements: what a contract or a warranty covers on a job, and what the customer pays."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.utils import timezone

from service_crm.models import Ticket, WorkOrder, WorkOrderCharge
from service_crm.models.choices import ChargeKind, Coverage
from service_crm.selectors.prices import labour_rate_on, part_price_on


def _covers(ticket: Ticket) -> tuple[bool, bool, str]:
    """(parts covered, labour covered, by what) for the ticket's coverage when it was opened."""
    if ticket.coverage == Coverage.CONTRACT and ticket.contract is not None:
        c = ticket.contract
        return c.covers_parts, c.covers_labour, c.number
    if ticket.coverage == Coverage.WARRANTY:
        return True, True, "warranty"  # a warranty repair costs the customer nothing
    return False, False, ""


def work_order_charge_internal(*, work_order: WorkOrder, ticket: Ticket) -> list[WorkOrderCharge]:
    """The charge lines of a completed work order (parts used, labour at the labour rate, both
    at the price list's rates on the day it was completed), each free or billable according to
    the ticket's coverage. Replaces earlier lines, if any."""
    parts_free, labour_free, by = _covers(ticket)
    day = timezone.localdate(work_order.completed_at or timezone.now(), dt.UTC)
    WorkOrderCharge.objects.filter(work_order=work_order).delete()
    lines = [
        WorkOrderCharge(work_order=work_order, kind=ChargeKind.PART, part=used.part,
                        description=f"{used.part.sku} {used.part.name}",
                        quantity=Decimal(used.quantity),
                        unit_price=part_price_on(part=used.part, on=day),
                        covered=parts_free, covered_by=by if parts_free else "")
        for used in work_order.parts_used.select_related("part")
    ]
    if work_order.time_spent_min > 0:
        hours = (Decimal(work_order.time_spent_min) / 60).quantize(Decimal("0.01"))
        lines.append(WorkOrderCharge(
            work_order=work_order, kind=ChargeKind.LABOUR, description="Engineer labour",
            quantity=hours, unit_price=labour_rate_on(on=day), covered=labour_free,
            covered_by=by if labour_free else ""))
    return WorkOrderCharge.objects.bulk_create(lines)
