"""Offers the automation drafts for the desk: the renewal of a contract nearing its end, and a
quote for the uncovered work of a completed job (instead of invoicing it straight away)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from service_crm import conf
from service_crm.models import MaintenanceContract, Offer, OfferLine, WorkOrder, WorkOrderCharge
from service_crm.models.choices import ChargeKind, OfferLineKind, OfferStatus, RenewalStatus
from service_crm.selectors.access import Role, has_role
from service_crm.services.audit import audit_record, interaction_record
from service_crm.services.offers import offer_create_renewal

# Who turns uncovered work into a quote: every office role (offers are the sales side's too).
QUOTE_ROLES = frozenset({Role.ADMIN, Role.DESK_AGENT, Role.SERVICE_MANAGER, Role.SALES_MANAGER})
OPEN = (OfferStatus.DRAFT, OfferStatus.PENDING_APPROVAL, OfferStatus.SENT)


def renewal_offer_days() -> int:
    """How many days before its end a contract gets its renewal offer drafted
    (``AFTERCARE_RENEWAL_OFFER_DAYS``; 0 turns the automation off)."""
    return int(settings.AFTERCARE_RENEWAL_OFFER_DAYS)  # declared in aftercare.config


def renewal_offers_draft_due(*, now: dt.datetime | None = None,
                             within_days: int | None = None) -> int:
    """Draft the renewal offer of every contract ending within ``within_days`` that does not
    renew itself and has none yet (renewal status still an opportunity or not due); returns how
    many were drafted. Idempotent: a drafted offer moves the contract to "offered", and a
    contract with an open renewal offer is refused by :func:`offer_create_renewal`. The draft
    waits for the desk to check and send it (no email goes out by itself)."""
    now = now or timezone.now()
    days = renewal_offer_days() if within_days is None else within_days
    if days <= 0:
        return 0
    today = now.date()
    ids = list(MaintenanceContract.objects.filter(
        auto_renew=False, end__gte=today, end__lte=today + dt.timedelta(days=days),
        renewal_status__in=[RenewalStatus.NOT_DUE, RenewalStatus.OPPORTUNITY],
    ).exclude(renewal_offers__status__in=OPEN).order_by("end", "pk").values_list("pk", flat=True))
    drafted = 0
    for pk in ids:
        contract = MaintenanceContract.objects.get(pk=pk)
        try:
            offer_create_renewal(contract=contract, actor=None, now=now)
        except ValidationError:
            continue  # renewed, lapsed or offered meanwhile (another worker): nothing to do
        drafted += 1
    return drafted


@transaction.atomic(durable=True)
def offer_create_for_uncovered_work(*, work_order: WorkOrder, actor: Any,
                                    now: dt.datetime | None = None) -> Offer:
    """Quote the billable lines of a completed work order that are not on an invoice yet (the
    customer wants an offer and a PO before being billed): a draft offer with one line per
    charge, at the charge's price; the lines leave the invoice flow (the accepted offer
    becomes a sales order instead). Audited, on the timeline."""
    now = now or timezone.now()
    if not has_role(user=actor, roles=QUOTE_ROLES):
        raise ValidationError({"actor": "Only office staff draft offers."})
    wo = WorkOrder.objects.select_for_update().select_related(
        "ticket__account", "ticket__asset").get(pk=work_order.pk)
    charges = list(WorkOrderCharge.objects.select_for_update().filter(
        work_order=wo, covered=False, invoice__isnull=True, offer__isnull=True).order_by("pk"))
    if not charges:
        raise ValidationError({"work_order": f"WO-{wo.pk:06d} has no uncovered work left to "
                                             "quote (covered, invoiced or quoted already)."})
    ticket = wo.ticket
    offer = Offer(account=ticket.account, asset=ticket.asset, created_at=now,
                  title=f"Uncovered work of WO-{wo.pk:06d} on {ticket.asset.serial}",
                  valid_until=(now + dt.timedelta(days=conf.offer_valid_days())).date(),
                  created_by_id=actor.pk)
    offer.full_clean()
    offer.save()
    kinds = {ChargeKind.PART: OfferLineKind.PART, ChargeKind.LABOUR: OfferLineKind.LABOUR}
    OfferLine.objects.bulk_create([
        OfferLine(offer=offer, kind=kinds[ChargeKind(c.kind)], part=c.part,
                  description=c.description, quantity=Decimal(c.quantity),
                  unit_price=c.unit_price) for c in charges])
    WorkOrderCharge.objects.filter(pk__in=[c.pk for c in charges]).update(offer=offer)
    audit_record(actor=actor, action="offer.draft", obj=offer, before=None, at=now)
    interaction_record(account=ticket.account, asset=ticket.asset, ticket=ticket, at=now,
                       by=actor, summary=f"Offer {offer.number} drafted for the uncovered work "
                                         f"of WO-{wo.pk:06d} ({len(charges)} line(s))")
    return offer
