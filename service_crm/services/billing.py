"""Billing: billable charge lines gathered into invoice drafts, approved by the desk, sent to
the ERP as ``invoice.approved`` through the outbox."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from service_crm import conf
from service_crm.models import Account, Invoice, WorkOrderCharge
from service_crm.models.choices import InvoiceStatus
from service_crm.selectors.access import Role, has_role
from service_crm.services.audit import audit_record, interaction_record, snapshot
from service_crm.services.webhooks import outbox_emit

# Who approves invoices: the desk and its managers (sales only looks).
APPROVE_ROLES = frozenset({Role.ADMIN, Role.DESK_AGENT, Role.SERVICE_MANAGER})


@transaction.atomic(durable=True)
def invoice_drafts_build(*, now: dt.datetime | None = None) -> int:
    """Put every billable line not on an invoice yet (nor quoted on an offer) on its account's
    open draft (created if none); returns how many lines were added. Safe to run from several
    workers at once."""
    now = now or timezone.now()
    lines = list(WorkOrderCharge.objects.select_for_update(skip_locked=True, of=("self",))
                 .select_related("work_order__ticket")
                 .filter(covered=False, invoice__isnull=True, offer__isnull=True)
                 .order_by("pk"))
    by_account: dict[int, list[WorkOrderCharge]] = {}
    for line in lines:
        by_account.setdefault(line.work_order.ticket.account_id, []).append(line)
    for account_id, account_lines in by_account.items():
        account = Account.objects.select_for_update().get(pk=account_id)  # one draft at a time
        draft = Invoice.objects.filter(account=account, status=InvoiceStatus.DRAFT).first()
        if draft is None:
            draft = Invoice.objects.create(account=account, created_at=now)
            audit_record(actor=None, action="invoice.draft", obj=draft, before=None, at=now)
        WorkOrderCharge.objects.filter(pk__in=[ln.pk for ln in account_lines]).update(
            invoice=draft)
        interaction_record(account=account, at=now,
                           summary=f"{len(account_lines)} billable line(s) added to invoice "
                                   f"draft {draft.number}")
    return len(lines)


@transaction.atomic(durable=True)
def invoice_approve(*, invoice: Invoice, actor: Any, now: dt.datetime | None = None) -> Invoice:
    """The desk approves a draft: it is final, and the ERP gets it as ``invoice.approved``."""
    now = now or timezone.now()
    if not has_role(user=actor, roles=APPROVE_ROLES):
        raise ValidationError({"approved_by": "Only the service desk approves invoices."})
    inv = Invoice.objects.select_for_update().select_related("account").get(pk=invoice.pk)
    if inv.status != InvoiceStatus.DRAFT:
        raise ValidationError({"status": f"{inv.number} is already {inv.status}."})
    lines = list(inv.lines.select_related("work_order").order_by("pk"))
    if not lines:
        raise ValidationError({"lines": "An invoice needs at least one line."})
    before = snapshot(inv)
    inv.status, inv.approved_at, inv.approved_by_id = InvoiceStatus.APPROVED, now, actor.pk
    inv.save()
    audit_record(actor=actor, action="invoice.approve", obj=inv, before=before, at=now)
    total = inv.total
    interaction_record(account=inv.account, at=now, by=actor,
                       summary=f"Invoice {inv.number} approved: {total} {conf.currency()}")
    outbox_emit(topic="invoice.approved", now=now, data={
        "invoice": inv.number, "invoice_id": inv.pk, "account_id": inv.account_id,
        "account": inv.account.name, "total": total, "currency": conf.currency(),
        "lines": [{"work_order_id": ln.work_order_id, "kind": ln.kind,
                   "description": ln.description, "quantity": ln.quantity,
                   "unit_price": ln.unit_price, "amount": ln.amount} for ln in lines]})
    return inv
