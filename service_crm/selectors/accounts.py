"""Account health and renewal opportunities."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Q

from service_crm.models import Account, Alert, MaintenanceContract, Ticket
from service_crm.models.choices import RenewalStatus, TicketStatus


@dataclass(frozen=True)
class AccountHealth:
    account_id: int
    alerts_90d: int
    sla_breaches_365d: int
    open_tickets: int

    @property
    def score(self) -> int:
        """100 = nothing wrong; each signal takes points off, capped so none dominates alone."""
        penalty = (min(2 * self.alerts_90d, 30) + min(10 * self.sla_breaches_365d, 40)
                   + min(5 * self.open_tickets, 30))
        return max(0, 100 - penalty)


def account_health_get(*, account: Account, now: dt.datetime) -> AccountHealth:
    return AccountHealth(
        account_id=account.pk,
        alerts_90d=Alert.objects.filter(asset__site__account=account,
                                        at__gte=now - dt.timedelta(days=90)).count(),
        sla_breaches_365d=Ticket.objects.filter(
            Q(response_breached=True) | Q(resolution_breached=True), account=account,
            opened_at__gte=now - dt.timedelta(days=365)).count(),
        open_tickets=Ticket.objects.filter(account=account).exclude(
            status__in=[TicketStatus.RESOLVED, TicketStatus.CLOSED]).count(),
    )


@dataclass(frozen=True)
class RenewalOpportunity:
    contract: MaintenanceContract
    health: AccountHealth


def contract_list_renewal_opportunities(
    *, now: dt.datetime, within_days: int = 90, at_risk_first: bool = True
) -> list[RenewalOpportunity]:
    """Contracts ending within ``within_days`` that are not renewed yet, ranked by account health.

    ``at_risk_first`` puts the least healthy accounts first: those need a call before the offer.
    """
    today = now.date()
    contracts = (MaintenanceContract.objects
                 .filter(end__gte=today, end__lte=today + dt.timedelta(days=within_days))
                 # A renewed contract ends a year later: once that end is near, it is an
                 # opportunity again (the next renewal).
                 .exclude(renewal_status=RenewalStatus.LAPSED)
                 .select_related("account"))
    out = [RenewalOpportunity(c, account_health_get(account=c.account, now=now))
           for c in contracts]
    out.sort(key=lambda o: (o.health.score if at_risk_first else -o.health.score,
                            o.contract.end, o.contract.pk))
    return out
