"""Timed automation: the SLA clock, offer expiry, watch periods, renewal opportunities and
their draft offers, contract expiry (auto-renewal or lapse) and planned maintenance visits."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.utils import timezone

from service_crm import conf
from service_crm.services.activities import tasks_remind_due
from service_crm.services.billing import invoice_drafts_build
from service_crm.services.contracts import contract_expire_due, contract_flag_renewals
from service_crm.services.episodes import episode_close_expired_watches
from service_crm.services.login_throttle import login_throttle_prune
from service_crm.services.notifications import (
    NotificationReport,
    notifications_send_due,
    outbox_only,
)
from service_crm.services.offers import offer_expire_due
from service_crm.services.planned_maintenance import planned_visits_generate
from service_crm.services.renewal_offers import renewal_offers_draft_due
from service_crm.services.tickets import ticket_check_sla
from service_crm.services.webhooks import webhook_deliver_due


@dataclass(frozen=True)
class HousekeepingReport:
    sla_breached: int
    sla_at_risk: int
    offers_expired: int
    episodes_closed: int
    renewal_opportunities: int
    login_throttles_pruned: int = 0
    contracts_renewed: int = 0
    contracts_lapsed: int = 0
    visits_planned: int = 0
    visits_skipped: int = 0
    visits_cancelled: int = 0
    webhooks_delivered: int = 0
    webhooks_failed: int = 0
    invoice_lines_drafted: int = 0
    renewal_offers_drafted: int = 0
    task_reminders: int = 0
    emails_retried: int = 0

    def __str__(self) -> str:
        return (f"SLA breached {self.sla_breached}, at risk {self.sla_at_risk}; offers expired "
                f"{self.offers_expired}; episodes closed {self.episodes_closed}; renewal "
                f"opportunities {self.renewal_opportunities}; idle log-in counts pruned "
                f"{self.login_throttles_pruned}; contracts auto-renewed "
                f"{self.contracts_renewed}, lapsed {self.contracts_lapsed}; planned visits "
                f"proposed {self.visits_planned}, skipped {self.visits_skipped}, cancelled "
                f"{self.visits_cancelled}; webhooks delivered {self.webhooks_delivered}, failed "
                f"{self.webhooks_failed}; billable lines put on invoice drafts "
                f"{self.invoice_lines_drafted}; renewal offers drafted "
                f"{self.renewal_offers_drafted}; follow-up reminders {self.task_reminders}; "
                f"emails retried {self.emails_retried}")


def housekeeping_run(*, now: dt.datetime | None = None) -> HousekeepingReport:
    """One pass of every timed rule; each step is its own transaction."""
    now = now or timezone.now()
    sla = ticket_check_sla(now=now)
    # Expiry before renewal flags and visit planning: a lapsed contract is neither an
    # opportunity nor owed visits, an auto-renewed one is owed the next year's.
    expiry = contract_expire_due(now=now)
    renewals = len(contract_flag_renewals(now=now))
    renewal_offers = renewal_offers_draft_due(now=now)
    plan = planned_visits_generate(now=now)
    drafted = invoice_drafts_build(now=now)
    # At most ~10 s of HTTP per pass: the consumer runs this in its ingestion thread
    # (`manage.py crm_webhooks` is the dedicated worker).
    hooks = webhook_deliver_due(now=now, budget_s=10)
    reminders = tasks_remind_due(now=now)
    # Emails whose send failed or never happened (a process died after its commit); in the
    # consumer they go to its mail thread, not this one, and a consumer that leaves its
    # emails to the outbox leaves these too (to `manage.py crm_mail`).
    emails = NotificationReport() if outbox_only() \
        else notifications_send_due(now=now)
    return HousekeepingReport(
        sla_breached=sla.breached, sla_at_risk=sla.at_risk,
        offers_expired=offer_expire_due(now=now),
        episodes_closed=episode_close_expired_watches(now=now),
        renewal_opportunities=renewals,
        login_throttles_pruned=login_throttle_prune(
            window_s=conf.login_window_s(), now=now),
        contracts_renewed=expiry.renewed, contracts_lapsed=expiry.lapsed,
        visits_planned=plan.planned, visits_skipped=plan.skipped,
        visits_cancelled=plan.cancelled,
        webhooks_delivered=hooks.delivered, webhooks_failed=hooks.failed + hooks.dead,
        invoice_lines_drafted=drafted, renewal_offers_drafted=renewal_offers,
        task_reminders=reminders, emails_retried=emails.dispatched,
    )
