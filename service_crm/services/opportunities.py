"""The sales pipeline: office staff open opportunities (by hand, from an account at risk, from an
ageing asset), move them through their stages, price them with a quote and win them when the
customer accepts it.

Rules:

- Stages move qualify -> propose -> negotiate (and back one step), any open stage -> lost;
  won and lost are final. *Won* is not a move: an opportunity is won when the customer accepts
  its quote (:func:`opportunity_win_internal`, called by ``offer_decide``).
- The probability is the stage's default (``STAGE_PROBABILITY_PCT``) unless the owner sets it;
  a stage move resets it to the new stage's default unless a probability comes with the move.
  Won is 100 %, lost 0 %.
- A quote is an :class:`~service_crm.models.Offer` linked to the opportunity, with equipment and
  service lines, in the installation's currency; it is discounted, approved, sent and decided
  by the offer services like any offer (a discount above the threshold needs a manager). One
  open quote at a time; drafting one sets the opportunity's value to the quote's total and moves
  a qualifying opportunity to propose.
- Office staff see every opportunity and open their own; only its owner or a manager (admin,
  sales or service manager) changes one, and only a manager gives one to someone else.
- Every change is audited and put on the account's timeline.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from service_crm import conf
from service_crm.models import Account, Asset, Offer, OfferLine, Opportunity
from service_crm.models.choices import (
    InteractionKind,
    OfferLineKind,
    OfferStatus,
    OpportunityKind,
    OpportunitySource,
    OpportunityStage,
)
from service_crm.models.opportunity import OPEN_STAGES, STAGE_PROBABILITY_PCT
from service_crm.selectors.access import STAFF_ROLES, Role, has_role
from service_crm.selectors.offers import offer_totals_get
from service_crm.selectors.opportunities import account_risk_get, asset_age_get
from service_crm.services.audit import audit_record, interaction_record, snapshot
from service_crm.services.webhooks import outbox_emit

S = OpportunityStage
MANAGERS = frozenset({Role.ADMIN, Role.SALES_MANAGER, Role.SERVICE_MANAGER})
# Where each open stage may go by hand (won only through an accepted quote).
MOVES: dict[str, tuple[str, ...]] = {
    S.QUALIFY: (S.PROPOSE, S.LOST),
    S.PROPOSE: (S.QUALIFY, S.NEGOTIATE, S.LOST),
    S.NEGOTIATE: (S.PROPOSE, S.LOST),
    S.WON: (),
    S.LOST: (),
}
QUOTE_LINE_KINDS = (OfferLineKind.EQUIPMENT, OfferLineKind.SERVICE)
OPEN_QUOTE = (OfferStatus.DRAFT, OfferStatus.PENDING_APPROVAL, OfferStatus.SENT)
DEFAULT_CLOSE_DAYS = 90


@dataclass(frozen=True)
class QuoteLine:
    """One line of a quote: equipment (a machine, a retrofit kit) or service (installation,
    commissioning, a contract year)."""

    kind: str
    description: str
    quantity: Decimal
    unit_price: Decimal


def _check_staff(actor: Any) -> None:
    if not has_role(user=actor, roles=STAFF_ROLES):
        raise ValidationError({"actor": "Only office staff work on the sales pipeline."})


def _check_may_change(actor: Any, opp: Opportunity) -> None:
    _check_staff(actor)
    if opp.owner_id != actor.pk and not has_role(user=actor, roles=MANAGERS):
        raise ValidationError({"owner": f"Only {opp.owner.get_username()} (the owner) or a "
                                        f"manager changes {opp.number}."})


def _check_open(opp: Opportunity) -> None:
    if not opp.is_open:
        raise ValidationError({"stage": f"{opp.number} is {opp.get_stage_display().lower()}: "
                                        "it no longer changes."})


def _locked(opp: Opportunity) -> Opportunity:
    return (Opportunity.objects.select_for_update(of=("self",))
            .select_related("account", "asset", "owner").get(pk=opp.pk))


def _create(*, account: Account, title: str, kind: str, value: Decimal,
            expected_close: dt.date, owner: Any, actor: Any, now: dt.datetime,
            asset: Asset | None = None, currency: str | None = None,
            probability_pct: int | None = None, source: str = OpportunitySource.DESK,
            source_note: str = "") -> Opportunity:
    _check_staff(actor)
    errors: dict[str, str] = {}
    if owner is None or not has_role(user=owner, roles=STAFF_ROLES):
        errors["owner"] = "The owner is someone in the office."
    elif owner.pk != actor.pk and not has_role(user=actor, roles=MANAGERS):
        errors["owner"] = "Only a manager opens an opportunity for someone else."
    if asset is not None and asset.site.account_id != account.pk:
        errors["asset"] = f"Asset {asset.serial} belongs to another account."
    if expected_close < now.date():
        errors["expected_close"] = "The expected close is today or later."
    if errors:
        raise ValidationError(errors)
    opp = Opportunity(
        account=account, asset=asset, title=title.strip(), kind=kind, value=value,
        currency=currency or conf.currency(), expected_close=expected_close, owner=owner,
        probability_pct=(STAGE_PROBABILITY_PCT[S.QUALIFY] if probability_pct is None
                         else probability_pct),
        probability_manual=probability_pct is not None, source=source,
        source_note=source_note[:300], created_at=now, created_by_id=actor.pk)
    opp.full_clean()
    opp.save()
    audit_record(actor=actor, action="opportunity.create", obj=opp, before=None, at=now)
    interaction_record(account=account, asset=asset, at=now, by=actor, kind=InteractionKind.NOTE,
                       summary=f"Opportunity {opp.number} opened: {opp.title} "
                               f"({opp.get_kind_display().lower()}, {opp.value} {opp.currency})"
                               + (f"; {source_note}" if source_note else ""))
    return opp


@transaction.atomic(durable=True)
def opportunity_create(*, account: Account, title: str, kind: str, value: Decimal,
                       expected_close: dt.date, actor: Any, owner: Any | None = None,
                       asset: Asset | None = None, currency: str | None = None,
                       probability_pct: int | None = None,
                       now: dt.datetime | None = None) -> Opportunity:
    """Open an opportunity in the qualify stage (owned by ``actor`` unless a manager names
    someone else). Audited, on the account's timeline."""
    now = now or timezone.now()
    return _create(account=account, title=title, kind=kind, value=value,
                   expected_close=expected_close, owner=owner or actor, actor=actor, now=now,
                   asset=asset, currency=currency, probability_pct=probability_pct)


@transaction.atomic(durable=True)
def opportunity_start_from_account(*, account: Account, actor: Any,
                                   kind: str = OpportunityKind.CONTRACT,
                                   value: Decimal = Decimal(0),
                                   expected_close: dt.date | None = None,
                                   now: dt.datetime | None = None) -> Opportunity:
    """An account at risk (risk score above 0 in the at-risk report) becomes an opportunity,
    by default to put its service on a (better) contract, with the report's reasons as its
    why. One open opportunity from the at-risk report per account."""
    now = now or timezone.now()
    _check_staff(actor)
    account = Account.objects.select_for_update().get(pk=account.pk)
    score, reasons = account_risk_get(account=account, now=now)
    if score == 0:
        raise ValidationError({"account": f"{account.name} shows no risk signal (health 100)."})
    existing = Opportunity.objects.filter(account=account, source=OpportunitySource.AT_RISK_ACCOUNT,
                                          stage__in=OPEN_STAGES).first()
    if existing is not None:
        raise ValidationError({"account": f"{existing.number} for this account at risk is "
                                          "still open."})
    return _create(account=account, title=f"Win back {account.name}", kind=kind, value=value,
                   expected_close=expected_close or now.date() + dt.timedelta(
                       days=DEFAULT_CLOSE_DAYS),
                   owner=actor, actor=actor, now=now, source=OpportunitySource.AT_RISK_ACCOUNT,
                   source_note=f"at risk (score {score}): " + "; ".join(reasons))


@transaction.atomic(durable=True)
def opportunity_start_from_asset(*, asset: Asset, actor: Any,
                                 kind: str = OpportunityKind.NEW_EQUIPMENT,
                                 value: Decimal = Decimal(0),
                                 expected_close: dt.date | None = None,
                                 now: dt.datetime | None = None) -> Opportunity:
    """An ageing asset (near its equipment model's expected life) becomes an opportunity to
    replace, upgrade or retrofit it. One open opportunity per asset."""
    now = now or timezone.now()
    _check_staff(actor)
    asset = (Asset.objects.select_for_update(of=("self",))
             .select_related("site__account", "equipment_model").get(pk=asset.pk))
    if kind == OpportunityKind.CONTRACT:
        raise ValidationError({"kind": "An ageing machine is replaced, upgraded or retrofitted."})
    age = asset_age_get(asset=asset, on=now.date())
    if not age.ageing:
        raise ValidationError({"asset": f"{asset.serial} is not ageing: {age.note}."})
    existing = Opportunity.objects.filter(asset=asset, stage__in=OPEN_STAGES).first()
    if existing is not None:
        raise ValidationError({"asset": f"{existing.number} for {asset.serial} is still open."})
    label = OpportunityKind(kind).label
    return _create(account=asset.site.account, asset=asset,
                   title=f"{label} for {asset.serial} ({asset.equipment_model.name})",
                   kind=kind, value=value,
                   expected_close=expected_close or now.date() + dt.timedelta(
                       days=DEFAULT_CLOSE_DAYS),
                   owner=actor, actor=actor, now=now, source=OpportunitySource.AGEING_ASSET,
                   source_note=f"ageing: {age.note}")


@transaction.atomic(durable=True)
def opportunity_move(*, opportunity: Opportunity, to: str, actor: Any,
                     probability_pct: int | None = None, lost_reason: str = "",
                     now: dt.datetime | None = None) -> Opportunity:
    """Move an open opportunity to another stage (``MOVES``); its probability becomes the new
    stage's default unless one is given. Lost needs a reason."""
    now = now or timezone.now()
    opp = _locked(opportunity)
    _check_may_change(actor, opp)
    _check_open(opp)
    if to == S.WON:
        raise ValidationError({"stage": "An opportunity is won when the customer accepts its "
                                        "quote: send one and record the answer."})
    if to not in MOVES[opp.stage]:
        allowed = ", ".join(str(S(s).label).lower() for s in MOVES[opp.stage])
        raise ValidationError({"stage": f"From {opp.get_stage_display().lower()} an "
                                        f"opportunity moves to {allowed}, not {to}."})
    if to == S.LOST and not lost_reason.strip():
        raise ValidationError({"lost_reason": "Say why it was lost."})
    before = snapshot(opp)
    old = opp.get_stage_display().lower()
    opp.stage = to
    if to == S.LOST:
        opp.probability_pct, opp.probability_manual = 0, False
        opp.lost_reason, opp.closed_at = lost_reason.strip()[:300], now
    elif probability_pct is None:
        opp.probability_pct, opp.probability_manual = STAGE_PROBABILITY_PCT[S(to)], False
    else:
        opp.probability_pct, opp.probability_manual = probability_pct, True
    opp.full_clean()
    opp.save()
    audit_record(actor=actor, action="opportunity.stage", obj=opp, before=before, at=now)
    interaction_record(account=opp.account, asset=opp.asset, at=now, by=actor,
                       kind=InteractionKind.NOTE,
                       summary=f"Opportunity {opp.number} moved from {old} to "
                               f"{opp.get_stage_display().lower()} ({opp.probability_pct} %)"
                               + (f": {opp.lost_reason}" if to == S.LOST else ""))
    if to == S.LOST:
        outbox_emit(topic="opportunity.lost", now=now, data=_event(opp))
    return opp


def _event(opp: Opportunity) -> dict[str, Any]:
    """An opportunity as its webhook events carry it (the ERP's or the sales system's view)."""
    return {"opportunity": opp.number, "opportunity_id": opp.pk, "account_id": opp.account_id,
            "account": opp.account.name, "kind": opp.kind, "title": opp.title,
            "asset_serial": opp.asset.serial if opp.asset else None, "value": opp.value,
            "currency": opp.currency, "lost_reason": opp.lost_reason or None,
            "closed_at": opp.closed_at}


@transaction.atomic(durable=True)
def opportunity_update(*, opportunity: Opportunity, actor: Any, title: str | None = None,
                       value: Decimal | None = None, expected_close: dt.date | None = None,
                       probability_pct: int | None = None, probability_reset: bool = False,
                       owner: Any | None = None,
                       now: dt.datetime | None = None) -> Opportunity:
    """Change what the office knows of an open opportunity: title, value, expected close,
    probability (then set by hand; ``probability_reset`` returns it to the stage's default)
    and, for managers, the owner."""
    now = now or timezone.now()
    opp = _locked(opportunity)
    _check_may_change(actor, opp)
    _check_open(opp)
    errors: dict[str, str] = {}
    before = snapshot(opp)
    if title is not None:
        opp.title = title.strip()
    if value is not None:
        opp.value = value
    if expected_close is not None:
        if expected_close < now.date() and expected_close != opp.expected_close:
            errors["expected_close"] = "The expected close is today or later."
        opp.expected_close = expected_close
    if probability_reset:
        opp.probability_pct, opp.probability_manual = STAGE_PROBABILITY_PCT[S(opp.stage)], False
    elif probability_pct is not None:
        opp.probability_pct, opp.probability_manual = probability_pct, True
    if owner is not None and owner.pk != opp.owner_id:
        if not has_role(user=actor, roles=MANAGERS):
            errors["owner"] = "Only a manager gives an opportunity to someone else."
        elif not has_role(user=owner, roles=STAFF_ROLES):
            errors["owner"] = "The owner is someone in the office."
        opp.owner = owner
    if errors:
        raise ValidationError(errors)
    opp.full_clean()
    changed = {k for k, v in (snapshot(opp) or {}).items() if (before or {}).get(k) != v}
    if not changed:
        return opp
    opp.save()
    audit_record(actor=actor, action="opportunity.update", obj=opp, before=before, at=now)
    interaction_record(account=opp.account, asset=opp.asset, at=now, by=actor,
                       kind=InteractionKind.NOTE,
                       summary=f"Opportunity {opp.number} updated: "
                               + ", ".join(sorted(c.replace("_", " ") for c in changed)))
    return opp


@transaction.atomic(durable=True)
def opportunity_quote_create(*, opportunity: Opportunity, lines: Sequence[QuoteLine], actor: Any,
                             discount_pct: Decimal = Decimal(0),
                             valid_until: dt.date | None = None,
                             now: dt.datetime | None = None) -> Offer:
    """Draft the opportunity's quote: an offer with its equipment and service lines, which then
    goes through the offer rules (approval of a big discount, consent to send, the customer's
    answer). The opportunity's value becomes the quote's total."""
    now = now or timezone.now()
    opp = _locked(opportunity)
    _check_may_change(actor, opp)
    _check_open(opp)
    errors: dict[str, str] = {}
    pending = Offer.objects.filter(opportunity=opp, status__in=OPEN_QUOTE).first()
    if pending is not None:
        errors["opportunity"] = (f"Quote {pending.number} is still "
                                 f"{pending.get_status_display().lower()}.")
    if opp.currency != conf.currency():
        errors["currency"] = (f"Quotes are in {conf.currency()}; {opp.number} is valued in "
                              f"{opp.currency}.")
    if not lines:
        errors["lines"] = "A quote needs at least one equipment or service line."
    for n, ln in enumerate(lines, start=1):
        if ln.kind not in QUOTE_LINE_KINDS:
            errors["lines"] = f"Line {n}: a quote line is equipment or service."
        elif not ln.description.strip():
            errors["lines"] = f"Line {n}: describe what is quoted."
        elif ln.quantity <= 0 or ln.unit_price < 0:
            errors["lines"] = f"Line {n}: a positive quantity and a price of 0 or more."
    if errors:
        raise ValidationError(errors)
    offer = Offer(account=opp.account, asset=opp.asset, opportunity=opp, created_at=now,
                  title=f"Quote for {opp.title}"[:200], discount_pct=discount_pct,
                  valid_until=valid_until or (now + dt.timedelta(
                      days=conf.offer_valid_days())).date(),
                  created_by_id=actor.pk)
    offer.full_clean(exclude=["opportunity"])
    offer.save()
    rows = [OfferLine(offer=offer, kind=ln.kind, description=ln.description.strip()[:300],
                      quantity=ln.quantity, unit_price=ln.unit_price) for ln in lines]
    for row in rows:
        row.full_clean(exclude=["offer"])
    OfferLine.objects.bulk_create(rows)
    audit_record(actor=actor, action="offer.draft", obj=offer, before=None, at=now)
    before = snapshot(opp)
    opp.value = offer_totals_get(offer=offer, lines=rows).total
    if opp.stage == S.QUALIFY:
        opp.stage = S.PROPOSE
        if not opp.probability_manual:
            opp.probability_pct = STAGE_PROBABILITY_PCT[S.PROPOSE]
    opp.save()
    audit_record(actor=actor, action="opportunity.quote", obj=opp, before=before, at=now)
    interaction_record(account=opp.account, asset=opp.asset, at=now, by=actor,
                       kind=InteractionKind.NOTE,
                       summary=f"Quote {offer.number} drafted for {opp.number}: "
                               f"{opp.value} {opp.currency}")
    return offer


def opportunity_win_internal(*, offer: Offer, actor: Any, now: dt.datetime) -> None:
    """The customer accepted ``offer``, the quote of an opportunity: the opportunity is won at
    the quote's total (even one marked lost meanwhile: the customer's yes decides). Runs
    inside ``offer_decide``'s transaction."""
    if offer.opportunity_id is None:
        return
    opp = (Opportunity.objects.select_for_update(of=("self",)).select_related("account", "asset")
           .get(pk=offer.opportunity_id))
    if opp.stage == S.WON:
        return
    before = snapshot(opp)
    opp.stage, opp.probability_pct, opp.probability_manual = S.WON, 100, False
    opp.value = offer_totals_get(offer=offer, lines=list(offer.lines.all())).total
    opp.closed_at, opp.lost_reason = now, ""
    opp.save()
    audit_record(actor=actor, action="opportunity.won", obj=opp, before=before, at=now)
    outbox_emit(topic="opportunity.won", now=now, data={**_event(opp), "offer": offer.number})
    interaction_record(account=opp.account, asset=opp.asset, at=now, by=actor,
                       summary=f"Opportunity {opp.number} won: quote {offer.number} accepted "
                               f"({opp.value} {opp.currency})")
