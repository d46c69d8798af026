"""Account health and renewal opportunities."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from service_crm.models import Account, MaintenanceContract
from service_crm.models.choices import RenewalStatus


@dataclass(frozen=True)
class AccountHealth:
    """An account's health, 0 (at risk) .. 100: ``100 - `` the at-risk report's score
    (:class:`service_crm.selectors.reports.AccountRisk`), the one definition every page, the
    API and the admin use."""

    account_id: int
    score: int
    reasons: tuple[str, ...] = ()


def account_health_get_many(*, account_ids: list[int], now: dt.datetime
                            ) -> dict[int, AccountHealth]:
    """Health of the given accounts (all of them, whoever asks: callers scope), by id."""
    from service_crm.selectors.reports import account_health_get_many as risks_get

    risks = risks_get(user=None, now=now, account_ids=account_ids)
    return {pk: AccountHealth(account_id=pk, score=r.health, reasons=tuple(r.reasons))
            for pk, r in risks.items()}


def account_health_get(*, account: Account, now: dt.datetime) -> AccountHealth:
    return account_health_get_many(account_ids=[account.pk], now=now).get(
        account.pk, AccountHealth(account_id=account.pk, score=100))


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
    found = list(contracts)
    health = account_health_get_many(account_ids=sorted({c.account_id for c in found}), now=now)
    out = [RenewalOpportunity(c, health.get(c.account_id, AccountHealth(c.account_id, 100)))
           for c in found]
    out.sort(key=lambda o: (o.health.score if at_risk_first else -o.health.score,
                            o.contract.end, o.contract.pk))
    return out
