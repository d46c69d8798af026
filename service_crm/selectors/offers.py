"""What an offer comes to: the lines' sum, the discount, the grand total, in one currency."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from service_crm import conf
from service_crm.models import Offer, OfferLine

CENT = Decimal("0.01")


@dataclass(frozen=True)
class OfferTotals:
    """Money of one offer, each rounded to the cent (half up, as on an invoice)."""

    subtotal: Decimal
    discount_pct: Decimal
    discount: Decimal
    total: Decimal
    currency: str


def offer_totals_get(*, offer: Offer, lines: Iterable[OfferLine] | None = None) -> OfferTotals:
    """Sum of the lines, minus the offer's discount; `lines` saves a query when loaded."""
    subtotal = sum((ln.quantity * ln.unit_price for ln in (
        offer.lines.all() if lines is None else lines)), Decimal(0))
    # Rounded as printed, so the printed rows add up: total = subtotal - discount.
    subtotal = subtotal.quantize(CENT, ROUND_HALF_UP)
    discount = (subtotal * offer.discount_pct / 100).quantize(CENT, ROUND_HALF_UP)
    return OfferTotals(subtotal=subtotal, discount_pct=offer.discount_pct, discount=discount,
                       total=subtotal - discount, currency=conf.currency())
