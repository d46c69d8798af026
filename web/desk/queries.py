"""Read-side figures for the service desk dashboard, computed in the database over the rows
the user may see (the guarded selectors narrow every query)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, DurationField, ExpressionWrapper, F, Q, QuerySet, Value

from service_crm import conf
from service_crm.models import Ticket, WorkOrder
from service_crm.models.choices import (
    AssetStatus,
    EpisodeStatus,
    Severity,
    TicketStatus,
    WorkOrderStatus,
)
from service_crm.selectors import access

OPEN_TICKET = ~Q(status__in=[TicketStatus.RESOLVED, TicketStatus.CLOSED])


@dataclass(frozen=True)
class Dashboard:
    assets_total: int
    devices: dict[str, int]
    assets_down: int
    accounts_at_risk: int
    episodes_by_severity: dict[str, int]
    tickets_open: int
    sla_breached: list[Ticket]
    sla_at_risk: list[Ticket]
    work_orders_today: list[WorkOrder]
    now: dt.datetime


def tickets_at_risk(tickets: QuerySet[Ticket], *, now: dt.datetime) -> QuerySet[Ticket]:
    """Open, unpaused, not yet breached, with less than the at-risk fraction of the
    resolution time left (the same rule as the SLA monitor)."""
    fraction = conf.sla_at_risk_fraction()
    return (tickets.filter(OPEN_TICKET, paused_at__isnull=True, resolution_due__isnull=False,
                           resolution_due__gt=now, resolution_breached=False)
            .annotate(
                left=ExpressionWrapper(F("resolution_due") - Value(now),
                                       output_field=DurationField()),
                allowed=ExpressionWrapper((F("resolution_due") - F("opened_at")) * fraction,
                                          output_field=DurationField()))
            .filter(left__lt=F("allowed")))


def dashboard_get(*, user: Any, now: dt.datetime, limit: int = 20) -> Dashboard:
    assets = access.asset_list_for_user(user=user)
    episodes = access.episode_list_for_user(user=user).filter(
        status__in=[EpisodeStatus.OPEN, EpisodeStatus.WATCHING])
    by_sev = dict(episodes.order_by().values_list("peak_severity").annotate(n=Count("pk")))
    tickets = access.ticket_list_for_user(user=user)
    day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return Dashboard(
        assets_total=assets.count(),
        devices=access.device_counts_for_user(user=user),
        assets_down=assets.filter(status=AssetStatus.DOWN).count(),
        accounts_at_risk=access.account_list_for_user(user=user).filter(
            health_score__lt=60).count(),
        episodes_by_severity={s: int(by_sev.get(s, 0)) for s in
                              (Severity.CRITICAL, Severity.WARNING, Severity.INFO)},
        tickets_open=tickets.filter(OPEN_TICKET).count(),
        sla_breached=list(tickets.filter(OPEN_TICKET).filter(
            Q(resolution_breached=True) | Q(response_breached=True))
            .order_by("resolution_due")[:limit]),
        sla_at_risk=list(tickets_at_risk(tickets, now=now).order_by("resolution_due")[:limit]),
        work_orders_today=list(
            access.work_order_list_for_user(user=user)
            .filter(scheduled_start__gte=day_start,
                    scheduled_start__lt=day_start + dt.timedelta(days=1))
            .exclude(status=WorkOrderStatus.CANCELLED).order_by("scheduled_start")[:limit]),
        now=now,
    )
