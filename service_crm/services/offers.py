"""Offers: drafted by the automation or the desk, approved when discounted, sent with consent."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser, AbstractUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from service_crm import conf
from service_crm.models import (
    Contact,
    Episode,
    MaintenanceContract,
    Offer,
    OfferLine,
    SalesOrder,
    Ticket,
)
from service_crm.models.choices import (
    Coverage,
    InteractionKind,
    OfferLineKind,
    OfferStatus,
    RenewalStatus,
)
from service_crm.selectors.coverage import coverage_at
from service_crm.selectors.offers import offer_totals_get
from service_crm.selectors.prices import prices_on
from service_crm.services import notifications
from service_crm.services.audit import audit_record, interaction_record, snapshot
from service_crm.services.contracts import contract_renew_internal
from service_crm.services.opportunities import opportunity_win_internal
from service_crm.services.webhooks import outbox_emit

O = OfferStatus  # noqa: E741


def offer_create_for_episode_internal(*, episode: Episode, ticket: Ticket | None,
                                      now: dt.datetime, contract_line: bool = True,
                                      actor: AbstractBaseUser | None = None) -> Offer:
    """Draft for an uncovered asset: the failure mode's parts, the labour, and a contract
    (`contract_line` False when the asset is covered already)."""
    asset = episode.asset
    offer = Offer.objects.create(
        account=asset.site.account, asset=asset, episode=episode, created_at=now,
        title=f"Repair of {asset.serial}: {episode.failure_mode_code}"
              + (" - and a maintenance contract" if contract_line else ""),
        valid_until=(now + dt.timedelta(days=conf.offer_valid_days())).date(),
        created_by_id=None if actor is None else actor.pk,
    )
    lines: list[OfferLine] = []
    fm = episode.failure_mode
    if fm is not None:
        boms = list(fm.bom.select_related("part"))
        prices = prices_on(parts=[bom.part for bom in boms], on=now.date())
        for bom in boms:
            lines.append(OfferLine(offer=offer, kind=OfferLineKind.PART, part=bom.part,
                                   description=f"{bom.part.sku} {bom.part.name}",
                                   quantity=Decimal(bom.quantity),
                                   unit_price=prices.part(bom.part)))
        lines.append(OfferLine(offer=offer, kind=OfferLineKind.LABOUR,
                               description=f"Engineer labour: {fm.name}",
                               quantity=fm.labour_hours, unit_price=prices.labour))
    if contract_line:
        lines.append(OfferLine(
            offer=offer, kind=OfferLineKind.CONTRACT, quantity=Decimal(1),
            description=f"Silver maintenance contract for {asset.serial}, 12 months",
            unit_price=asset.equipment_model.contract_list_price))
    OfferLine.objects.bulk_create(lines)
    audit_record(actor=actor, action="offer.draft", obj=offer, before=None, at=now)
    interaction_record(account=offer.account, asset=asset, ticket=ticket, at=now, by=actor,
                       kind=InteractionKind.AUTOMATION if actor is None else InteractionKind.NOTE,
                       summary=f"Draft offer {offer.number} prepared "
                               + ("(asset not covered)" if actor is None else "by the desk"))
    return offer


OPEN_OFFER = (OfferStatus.DRAFT, OfferStatus.PENDING_APPROVAL, OfferStatus.SENT)


@transaction.atomic(durable=True)
def offer_create_for_episode(*, episode: Episode, actor: AbstractBaseUser,
                             now: dt.datetime | None = None) -> Offer:
    """The desk drafts an offer for an episode's repair: the failure mode's parts and labour,
    and a maintenance contract when the asset is not covered. One open offer per episode."""
    now = now or timezone.now()
    episode = Episode.objects.select_for_update(of=("self",)).select_related(
        "asset__site__account", "asset__equipment_model", "failure_mode").get(pk=episode.pk)
    existing = Offer.objects.filter(episode=episode, status__in=OPEN_OFFER).first()
    if existing is not None:
        raise ValidationError({"episode": f"Offer {existing.number} for this episode is still "
                                          f"{existing.get_status_display().lower()}."})
    covered = coverage_at(asset=episode.asset, on=now.date()).coverage != Coverage.NONE
    ticket = episode.tickets.order_by("-opened_at").first()
    return offer_create_for_episode_internal(episode=episode, ticket=ticket, now=now,
                                             contract_line=not covered, actor=actor)


@transaction.atomic(durable=True)
def offer_create_renewal(*, contract: MaintenanceContract, actor: AbstractBaseUser | None,
                         discount_pct: Decimal = Decimal(0),
                         now: dt.datetime | None = None) -> Offer:
    """Draft the renewal of a contract for another year at its current price."""
    now = now or timezone.now()
    contract = MaintenanceContract.objects.select_for_update().get(pk=contract.pk)
    if contract.renewal_status in (RenewalStatus.RENEWED, RenewalStatus.LAPSED):
        raise ValidationError({"renews": f"Contract {contract.number} is already "
                                         f"{contract.renewal_status}."})
    pending = Offer.objects.filter(renews=contract, status__in=OPEN_OFFER).first()
    if pending is not None:  # one renewal offer at a time: a second would renew it twice
        raise ValidationError({"renews": f"Renewal offer {pending.number} for "
                                         f"{contract.number} is still "
                                         f"{pending.get_status_display().lower()}."})
    offer = Offer(account=contract.account, renews=contract, created_at=now,
                  title=f"Renewal of {contract.number} ({contract.get_tier_display()})",
                  discount_pct=discount_pct,
                  valid_until=min(contract.end, (now + dt.timedelta(
                      days=conf.offer_valid_days())).date()),
                  created_by_id=None if actor is None else actor.pk)
    offer.full_clean()
    offer.save()
    OfferLine.objects.create(offer=offer, kind=OfferLineKind.RENEWAL, quantity=Decimal(1),
                             description=f"{contract.get_tier_display()} contract, 12 months",
                             unit_price=contract.price)
    before = snapshot(contract)
    contract.renewal_status = RenewalStatus.OFFERED
    contract.save(update_fields=["renewal_status"])
    audit_record(actor=actor, action="contract.renewal_offered", obj=contract, before=before,
                 at=now)
    audit_record(actor=actor, action="offer.draft", obj=offer, before=None, at=now)
    interaction_record(account=offer.account, at=now, by=actor,
                       summary=f"Renewal offer {offer.number} drafted for {contract.number}")
    return offer


def _locked(offer: Offer) -> Offer:
    return Offer.objects.select_for_update().get(pk=offer.pk)


@transaction.atomic(durable=True)
def offer_set_discount(*, offer: Offer, discount_pct: Decimal, actor: AbstractBaseUser | None,
                       now: dt.datetime | None = None) -> Offer:
    """Change the discount of a draft; an approval given earlier no longer counts."""
    now = now or timezone.now()
    offer = _locked(offer)
    if offer.status != O.DRAFT:
        raise ValidationError({"discount_pct": "Only a draft's discount can change."})
    before = snapshot(offer)
    offer.discount_pct = discount_pct
    offer.approved_by, offer.approved_at = None, None
    offer.full_clean()
    offer.save()
    audit_record(actor=actor, action="offer.discount", obj=offer, before=before, at=now)
    return offer


@transaction.atomic(durable=True)
def offer_request_approval(*, offer: Offer, actor: AbstractBaseUser | None,
                           now: dt.datetime | None = None) -> Offer:
    now = now or timezone.now()
    offer = _locked(offer)
    if offer.status != O.DRAFT:
        raise ValidationError({"status": "Only a draft can be submitted for approval."})
    before = snapshot(offer)
    offer.status = O.PENDING_APPROVAL
    offer.save()
    audit_record(actor=actor, action="offer.request_approval", obj=offer, before=before, at=now)
    return offer


@transaction.atomic(durable=True)
def offer_approve(*, offer: Offer, approver: AbstractUser,
                  now: dt.datetime | None = None) -> Offer:
    """A manager approves the discount of an offer pending approval."""
    now = now or timezone.now()
    offer = _locked(offer)
    if not approver.has_perm("service_crm.approve_offer"):
        raise ValidationError({"approved_by": "Only a manager can approve offer discounts."})
    if offer.status != O.PENDING_APPROVAL:
        raise ValidationError({"status": "The offer is not pending approval."})
    if offer.created_by_id is not None and offer.created_by_id == approver.pk:
        raise ValidationError({"approved_by": "Nobody approves their own offer."})
    before = snapshot(offer)
    offer.approved_by_id, offer.approved_at = approver.pk, now
    offer.save()
    audit_record(actor=approver, action="offer.approve", obj=offer, before=before, at=now)
    return offer


@transaction.atomic(durable=True)
def offer_send(*, offer: Offer, actor: AbstractBaseUser | None,
               now: dt.datetime | None = None) -> Offer:
    """Email the offer to the account's contacts who consented to receive offers (only them)."""
    now = now or timezone.now()
    offer = _locked(offer)
    errors: dict[str, str] = {}
    if offer.status not in (O.DRAFT, O.PENDING_APPROVAL):
        errors["status"] = f"A {offer.status} offer cannot be sent."
    elif offer.discount_pct > conf.discount_approval_pct() and offer.approved_by_id is None:
        errors["discount_pct"] = (f"A discount above {conf.discount_approval_pct()} % needs a "
                                  "manager's approval.")
    if offer.valid_until < now.date():
        errors["valid_until"] = "The offer has expired; set a new validity first."
    if not offer.lines.exists():
        errors["lines"] = "An offer needs at least one line."
    recipients = list(Contact.objects.filter(account=offer.account, offer_consent=True))
    if not recipients:
        errors["sent_to"] = "No contact of this account has consented to receive offers."
    if errors:
        raise ValidationError(errors)
    before = snapshot(offer)
    offer.status, offer.sent_at = O.SENT, now
    offer.save()
    offer.sent_to.set(recipients)
    audit_record(actor=actor, action="offer.send", obj=offer, before=before, at=now)
    for c in recipients:
        interaction_record(account=offer.account, contact=c, asset=offer.asset, at=now,
                           kind="email", by=actor, summary=f"Offer {offer.number} sent to {c.name}")
    notifications.notify("offer.sent", now=now, offer_id=offer.pk,
                         contact_ids=[c.pk for c in recipients])
    return offer


@transaction.atomic(durable=True)
def offer_decide(*, offer: Offer, accepted: bool, actor: AbstractBaseUser | None,
                 now: dt.datetime | None = None, po_reference: str = "") -> Offer:
    """Record the customer's answer to a sent offer; an accepted one becomes a sales order
    (with the customer's purchase-order reference, if given)."""
    now = now or timezone.now()
    offer = _locked(offer)
    if offer.status != O.SENT:
        raise ValidationError({"status": "Only a sent offer can be accepted or declined."})
    if accepted and offer.valid_until < now.date():
        raise ValidationError({"valid_until": "The offer expired before it was accepted."})
    before = snapshot(offer)
    offer.status, offer.decided_at = (O.ACCEPTED if accepted else O.DECLINED), now
    offer.save()
    if accepted and offer.renews_id is not None:
        contract = MaintenanceContract.objects.select_for_update().select_related(
            "account").get(pk=offer.renews_id)
        contract_renew_internal(contract=contract, actor=actor, now=now,
                                why=f"offer {offer.number} accepted")
    if accepted and offer.opportunity_id is not None:
        opportunity_win_internal(offer=offer, actor=actor, now=now)
    audit_record(actor=actor, action=f"offer.{offer.status}", obj=offer, before=before, at=now)
    # Say who answered: the customer's contact in the portal, or the desk on their behalf.
    contact = (None if actor is None
               else Contact.objects.filter(account=offer.account, user_id=actor.pk).first())
    who = (f" by {contact.name} (portal)" if contact is not None
           else "" if actor is None else f" by {actor.get_username()} for the customer")
    po = po_reference.strip()
    interaction_record(account=offer.account, asset=offer.asset, at=now, by=actor,
                       contact=contact,
                       kind=InteractionKind.AUTOMATION if actor is None else InteractionKind.NOTE,
                       summary=f"Offer {offer.number} {offer.get_status_display().lower()}{who}"
                               + (f", PO {po}" if accepted and po else ""))
    if accepted:
        lines = list(offer.lines.all())
        outbox_emit(topic="offer.accepted", now=now, data={
            "offer": offer.number, "offer_id": offer.pk, "account_id": offer.account_id,
            "account": offer.account.name, "title": offer.title,
            "asset_serial": offer.asset.serial if offer.asset else None,
            "renews_contract": offer.renews.number if offer.renews else None,
            "discount_pct": offer.discount_pct,
            "lines": [{"kind": ln.kind, "description": ln.description, "quantity": ln.quantity,
                       "unit_price": ln.unit_price,
                       "total": ln.total.quantize(Decimal("0.01"))} for ln in lines],
        })
        money = offer_totals_get(offer=offer, lines=lines)  # the figures the customer saw
        order = SalesOrder(offer=offer, account_id=offer.account_id, created_at=now,
                           po_reference=po_reference.strip())
        order.full_clean(exclude=["offer", "account"])
        order.save()
        audit_record(actor=actor, action="order.create", obj=order, before=None, at=now)
        outbox_emit(topic="order.created", now=now, data={
            "order": order.number, "order_id": order.pk, "offer": offer.number,
            "account_id": offer.account_id, "po_reference": order.po_reference,
            "lines_total": money.subtotal, "discount_pct": offer.discount_pct,
            "total": money.total, "currency": money.currency})
    return offer


@transaction.atomic(durable=True)
def offer_expire_due(*, now: dt.datetime | None = None) -> int:
    """Sent offers past their validity become expired; returns how many."""
    now = now or timezone.now()
    n = 0
    for offer in Offer.objects.select_for_update(skip_locked=True).filter(
            status=O.SENT, valid_until__lt=now.date()):
        before = snapshot(offer)
        offer.status = O.EXPIRED
        offer.save(update_fields=["status"])
        audit_record(actor=None, action="offer.expired", obj=offer, before=before, at=now)
        interaction_record(account=offer.account, asset=offer.asset, at=now,
                           summary=f"Offer {offer.number} expired unanswered")
        n += 1
    return n
