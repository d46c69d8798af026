"""Read-side figures for the service desk dashboard, computed in the database over the rows
the user may see (the guarded selectors narrow every query). The open-ticket and SLA-at-risk
rules are the ticket query set's (``service_crm.models.ticket``)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.core.cache import cache
from django.db.models import Count, Q
from django.utils import timezone

from service_crm import conf
from service_crm.models import Ticket, WorkOrder
from service_crm.models.choices import (
    AssetStatus,
    EpisodeStatus,
    Severity,
    WorkOrderStatus,
)
from service_crm.models.ticket import TicketQuerySet
from service_crm.selectors import access
from service_crm.selectors.reports import account_count_at_risk


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


def tickets_at_risk(tickets: TicketQuerySet, *, now: dt.datetime) -> TicketQuerySet:
    """In the SLA-at-risk window and not yet breached (due later than ``now``)."""
    return tickets.sla_at_risk_window(now).filter(resolution_due__gt=now,
                                                  resolution_breached=False)


def _scope_key(user: Any) -> str:
    """Everything that decides which rows a user sees, and nothing else: users with the same
    key see the same counts, so they may share them."""
    sc = access.scope_for(user=user)
    return (f"all={int(sc.everything)}:region={sc.region}:engineer={sc.engineer_id}:"
            f"account={sc.account_id}")


def dashboard_counts_get(*, user: Any, now: dt.datetime | None = None) -> dict[str, Any]:
    """The dashboard's fleet counts (assets, assets down, accounts at risk, device states)
    over the rows the user may see, cached for ``AFTERCARE_DASHBOARD_CACHE_S`` seconds
    (default 5) per scope.

    These scan the big, slowly changing tables (``devices`` is rewritten by every ingest
    batch), every open desk polls the panel every 15 s, and every desk user sees the same
    numbers, so one computation serves them all. The key is the scope (region, engineer,
    account or everything), so a scoped user never gets another scope's figures. Episode
    and ticket counts are what a desk reacts to and are cheap: they stay live (not here).
    0 turns caching off.
    """
    ttl = conf.dashboard_cache_s()
    key = f"aftercare:dashboard-counts:v1:{_scope_key(user)}"
    if ttl > 0:
        hit = cache.get(key)
        if hit is not None:
            return dict(hit)
    assets = access.asset_list_for_user(user=user)
    counts: dict[str, Any] = {
        "assets_total": assets.count(),
        "devices": access.device_counts_for_user(user=user),
        "assets_down": assets.filter(status=AssetStatus.DOWN).count(),
        # The reports page's definition (risk score above 0), not a second one.
        "accounts_at_risk": account_count_at_risk(user=user, now=now or timezone.now()),
    }
    if ttl > 0:
        cache.set(key, counts, ttl)
    return counts


def dashboard_get(*, user: Any, now: dt.datetime, limit: int = 20) -> Dashboard:
    counts = dashboard_counts_get(user=user, now=now)
    episodes = access.episode_list_for_user(user=user).filter(
        status__in=[EpisodeStatus.OPEN, EpisodeStatus.WATCHING])
    by_sev = dict(episodes.order_by().values_list("peak_severity").annotate(n=Count("pk")))
    tickets = access.ticket_list_for_user(user=user)
    day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return Dashboard(
        assets_total=counts["assets_total"],
        devices=dict(counts["devices"]),
        assets_down=counts["assets_down"],
        accounts_at_risk=counts["accounts_at_risk"],
        episodes_by_severity={s: int(by_sev.get(s, 0)) for s in
                              (Severity.CRITICAL, Severity.WARNING, Severity.INFO)},
        tickets_open=tickets.open().count(),
        sla_breached=list(tickets.open().filter(
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
