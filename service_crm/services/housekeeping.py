"""Timed automation: the SLA clock, offer expiry, watch periods and renewal opportunities."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.utils import timezone

from service_crm.services.contracts import contract_flag_renewals
from service_crm.services.episodes import episode_close_expired_watches
from service_crm.services.login_throttle import login_throttle_prune
from service_crm.services.offers import offer_expire_due
from service_crm.services.tickets import ticket_check_sla


@dataclass(frozen=True)
class HousekeepingReport:
    sla_breached: int
    sla_at_risk: int
    offers_expired: int
    episodes_closed: int
    renewal_opportunities: int
    login_throttles_pruned: int = 0

    def __str__(self) -> str:
        return (f"SLA breached {self.sla_breached}, at risk {self.sla_at_risk}; offers expired "
                f"{self.offers_expired}; episodes closed {self.episodes_closed}; renewal "
                f"opportunities {self.renewal_opportunities}; idle log-in counts pruned "
                f"{self.login_throttles_pruned}")


def housekeeping_run(*, now: dt.datetime | None = None) -> HousekeepingReport:
    """One pass of every timed rule; each step is its own transaction."""
    now = now or timezone.now()
    sla = ticket_check_sla(now=now)
    return HousekeepingReport(
        sla_breached=sla.breached, sla_at_risk=sla.at_risk,
        offers_expired=offer_expire_due(now=now),
        episodes_closed=episode_close_expired_watches(now=now),
        renewal_opportunities=len(contract_flag_renewals(now=now)),
        login_throttles_pruned=login_throttle_prune(
            window_s=int(getattr(settings, "AFTERCARE_LOGIN_WINDOW_S", 900)), now=now),
    )
