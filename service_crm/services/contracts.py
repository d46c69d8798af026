"""Contracts: their documents, renewal opportunities and account health."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from service_crm.models import ContractDocument, MaintenanceContract
from service_crm.models.choices import RenewalStatus
from service_crm.selectors.access import Role, has_role
from service_crm.selectors.accounts import (
    RenewalOpportunity,
    contract_list_renewal_opportunities,
)
from service_crm.services import notifications
from service_crm.services.audit import audit_record, interaction_record, snapshot
from service_crm.services.webhooks import outbox_emit

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
    """Mark contracts nearing their end as renewal opportunities (once each), noting the
    account's health (worked out, as on every page, by
    :func:`service_crm.selectors.accounts.account_health_get`); returns the ranked
    opportunities."""
    now = now or timezone.now()
    ranked = contract_list_renewal_opportunities(now=now, within_days=within_days)
    for opp in ranked:
        c = opp.contract
        account = c.account
        if c.renewal_status in (RenewalStatus.NOT_DUE, RenewalStatus.RENEWED):
            before = snapshot(c)
            c.renewal_status = RenewalStatus.OPPORTUNITY
            c.save(update_fields=["renewal_status"])
            audit_record(actor=None, action="contract.renewal_opportunity", obj=c,
                         before=before, at=now)
            interaction_record(account=account, at=now,
                               summary=f"Contract {c.number} ends {c.end}: renewal opportunity "
                                       f"(account health {opp.health.score})")
    return ranked



def _one_year_later(day: dt.date) -> dt.date:
    try:
        return day.replace(year=day.year + 1)
    except ValueError:  # 29 February
        return day.replace(year=day.year + 1, day=28)


def contract_renew_internal(*, contract: MaintenanceContract, actor: Any, now: dt.datetime,
                            why: str) -> MaintenanceContract:
    """Extend a (locked) contract by twelve months from its current end; audited, on the
    timeline. Called when a renewal offer is accepted and for ``auto_renew`` contracts."""
    before = snapshot(contract)
    contract.end = _one_year_later(contract.end)
    contract.renewal_status = RenewalStatus.RENEWED
    contract.full_clean()
    contract.save(update_fields=["end", "renewal_status"])
    audit_record(actor=actor, action="contract.renewed", obj=contract, before=before, at=now)
    interaction_record(account=contract.account, at=now, by=actor,
                       summary=f"Contract {contract.number} renewed until {contract.end} ({why})")
    outbox_emit(topic="contract.renewed", now=now, data={
        "contract": contract.number, "contract_id": contract.pk,
        "account_id": contract.account_id, "account": contract.account.name,
        "previous_end": before["end"] if before else None, "end": contract.end,
        "price": contract.price, "how": why})
    return contract


@dataclass(frozen=True)
class ExpiryReport:
    renewed: int = 0
    lapsed: int = 0


@transaction.atomic(durable=True)
def contract_expire_due(*, now: dt.datetime | None = None) -> ExpiryReport:
    """On its last day an ``auto_renew`` contract renews itself for twelve months (so cover never
    stops); a contract past its end that nobody renewed lapses: audited, on the timeline, and
    the desk is told so someone calls the customer."""
    now = now or timezone.now()
    today = now.date()
    renewed = lapsed = 0
    due = (MaintenanceContract.objects.select_for_update(skip_locked=True)
           .select_related("account").exclude(renewal_status=RenewalStatus.LAPSED)
           .filter(end__lte=today).order_by("pk"))
    for c in due:
        if c.auto_renew:
            while c.end <= today:  # a contract idle for years catches up in one pass
                contract_renew_internal(contract=c, actor=None, now=now, why="auto-renewal")
            renewed += 1
        elif c.end < today:
            before = snapshot(c)
            c.renewal_status = RenewalStatus.LAPSED
            c.save(update_fields=["renewal_status"])
            audit_record(actor=None, action="contract.lapsed", obj=c, before=before, at=now)
            outbox_emit(topic="contract.lapsed", now=now, data={
                "contract": c.number, "contract_id": c.pk, "account_id": c.account_id,
                "account": c.account.name, "end": c.end})
            interaction_record(account=c.account, at=now,
                               summary=f"Contract {c.number} lapsed on {c.end}: not renewed; "
                                       "desk asked to call the customer")
            notifications.notify("contract.lapsed", now=now, contract_id=c.pk)
            lapsed += 1
    return ExpiryReport(renewed=renewed, lapsed=lapsed)
