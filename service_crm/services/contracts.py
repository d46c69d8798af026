"""Contracts: their documents, renewal opportunities and account health."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from service_crm.models import Account, ContractDocument, MaintenanceContract
from service_crm.models.choices import RenewalStatus
from service_crm.selectors.access import Role, has_role
from service_crm.selectors.accounts import (
    RenewalOpportunity,
    contract_list_renewal_opportunities,
)
from service_crm.services.audit import audit_record, interaction_record, snapshot

# Who may add contract documents: the desk and its managers (sales only looks).
DOCUMENT_ROLES = frozenset({Role.ADMIN, Role.DESK_AGENT, Role.SERVICE_MANAGER})


@transaction.atomic(durable=True)
def contract_document_add(*, contract: MaintenanceContract, title: str, file: Any, actor: Any,
                          now: dt.datetime | None = None) -> ContractDocument:
    """Attach a PDF to a contract; the account's customers can download it in the portal.
    Checked (PDF, size) before anything is stored; audited and put on the account timeline."""
    now = now or timezone.now()
    if not has_role(user=actor, roles=DOCUMENT_ROLES):
        raise ValidationError({"actor": "Only the service desk adds contract documents."})
    doc = ContractDocument(contract=contract, title=title.strip(), file=file, uploaded_at=now)
    doc.full_clean()
    doc.save()
    audit_record(actor=actor, action="contract.document_add", obj=doc, before=None, at=now)
    interaction_record(account=contract.account, at=now, by=actor,
                       summary=f"Document {doc.title!r} added to contract {contract.number}")
    return doc


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

