"""Contract housekeeping: renewal opportunities and account health."""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone

from service_crm.models import Account
from service_crm.models.choices import RenewalStatus
from service_crm.selectors.accounts import (
    RenewalOpportunity,
    contract_list_renewal_opportunities,
)
from service_crm.services.audit import audit_record, interaction_record, snapshot


@transaction.atomic(durable=True)
def contract_flag_renewals(*, within_days: int = 90,
                           now: dt.datetime | None = None) -> list[RenewalOpportunity]:
    """Mark contracts nearing their end as renewal opportunities (once each) and refresh the
    health score of their accounts; returns the ranked opportunities."""
    now = now or timezone.now()
    ranked = contract_list_renewal_opportunities(now=now, within_days=within_days)
    for opp in ranked:
        c = opp.contract
        account = Account.objects.select_for_update().get(pk=c.account_id)
        if account.health_score != opp.health.score:
            before = snapshot(account)
            account.health_score = opp.health.score
            account.save(update_fields=["health_score"])
            audit_record(actor=None, action="account.health", obj=account, before=before, at=now)
        if c.renewal_status == RenewalStatus.NOT_DUE:
            before = snapshot(c)
            c.renewal_status = RenewalStatus.OPPORTUNITY
            c.save(update_fields=["renewal_status"])
            audit_record(actor=None, action="contract.renewal_opportunity", obj=c,
                         before=before, at=now)
            interaction_record(account=account, at=now,
                               summary=f"Contract {c.number} ends {c.end}: renewal opportunity "
                                       f"(account health {opp.health.score})")
    return ranked

