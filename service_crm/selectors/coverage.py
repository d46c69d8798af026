"""What covers an asset on a given day."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from service_crm.business_hours import Hours
from service_crm.models import (
    Asset,
    BusinessCalendar,
    MaintenanceContract,
    Ticket,
    WarrantySlaTarget,
)
from service_crm.models.choices import Coverage


@dataclass(frozen=True)
class AssetCoverage:
    coverage: Coverage
    contract: MaintenanceContract | None


def contract_get_active(*, asset: Asset, on: dt.date) -> MaintenanceContract | None:
    """The asset's contract in force on ``on`` (the highest-priced if several overlap)."""
    return (MaintenanceContract.objects.filter(assets=asset, start__lte=on, end__gte=on)
            .select_related("calendar").order_by("-price", "pk").first())


def coverage_at(*, asset: Asset, on: dt.date) -> AssetCoverage:
    """Contract first, then warranty, else nothing."""
    contract = contract_get_active(asset=asset, on=on)
    if contract is not None:
        return AssetCoverage(Coverage.CONTRACT, contract)
    if asset.under_warranty(on):
        return AssetCoverage(Coverage.WARRANTY, None)
    return AssetCoverage(Coverage.NONE, None)


def calendar_hours(calendar: BusinessCalendar) -> Hours:
    return Hours(
        timezone=calendar.timezone, always_open=calendar.always_open,
        workdays=frozenset(calendar.workdays), opens=calendar.opens, closes=calendar.closes,
        holidays=frozenset(calendar.holidays),
    )


def ticket_sla_calendar(*, ticket: Ticket) -> BusinessCalendar | None:
    """The calendar a ticket's SLA clock runs on: its contract's, or the warranty terms'."""
    if ticket.contract is not None:
        return ticket.contract.calendar
    if ticket.coverage == Coverage.WARRANTY:
        terms = WarrantySlaTarget.objects.filter(priority=ticket.priority).select_related(
            "calendar").first()
        return None if terms is None else terms.calendar
    return None
