"""Price look-ups: the price list entry valid on a day, else the catalogue's list price."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db.models import Q, QuerySet
from django.http import Http404

from service_crm import conf
from service_crm.models import PriceListEntry, SparePart
from service_crm.models.choices import ChargeKind
from service_crm.selectors.access import scope_for


def _valid_on(on: dt.date) -> QuerySet[PriceListEntry]:
    """Price list entries in the installation's currency valid on day ``on``, the one that
    counts first (the latest start wins; then the latest entry)."""
    return (PriceListEntry.objects
            .filter(currency=conf.currency(), valid_from__lte=on)
            .filter(Q(valid_until__isnull=True) | Q(valid_until__gte=on))
            .order_by("-valid_from", "-pk"))


def _listed(*, kind: str, part: SparePart | None, on: dt.date) -> Decimal | None:
    return _valid_on(on).filter(kind=kind, part=part).values_list("unit_price", flat=True).first()


def part_price_on(*, part: SparePart, on: dt.date) -> Decimal:
    """What one of ``part`` costs on day ``on`` in the installation's currency: the price list
    entry valid that day (the latest start wins), else the part's list price."""
    listed = _listed(kind=ChargeKind.PART, part=part, on=on)
    return part.price if listed is None else listed


def labour_rate_on(*, on: dt.date) -> Decimal:
    """What an engineer hour costs on day ``on``: the price list's labour entry valid that
    day, else ``AFTERCARE_LABOUR_RATE_EUR``."""
    listed = _listed(kind=ChargeKind.LABOUR, part=None, on=on)
    return conf.labour_rate() if listed is None else listed


@dataclass(frozen=True)
class PricesOn:
    """The labour rate and the prices of some parts on one day."""

    labour: Decimal
    parts: dict[int, Decimal]

    def part(self, part: SparePart) -> Decimal:
        return self.parts[part.pk]


def prices_on(*, parts: Sequence[SparePart], on: dt.date) -> PricesOn:
    """:func:`labour_rate_on` and :func:`part_price_on` of each of ``parts``, in one query
    instead of one per part (an offer drafted from a bill of materials)."""
    first: dict[tuple[str, int | None], Decimal] = {}
    rows = (_valid_on(on)
            .filter(Q(kind=ChargeKind.LABOUR, part__isnull=True)
                    | Q(kind=ChargeKind.PART, part__in=[p.pk for p in parts]))
            .values_list("kind", "part_id", "unit_price"))
    for kind, part_id, price in rows:  # in _valid_on's order: the first one counts
        first.setdefault((kind, part_id), price)
    labour = first.get((ChargeKind.LABOUR, None))
    return PricesOn(
        labour=conf.labour_rate() if labour is None else labour,
        parts={p.pk: first.get((ChargeKind.PART, p.pk), p.price) for p in parts})


def price_list_for_user(*, user: Any) -> QuerySet[PriceListEntry]:
    """The price list: office staff only (customers see prices on their offers)."""
    qs = PriceListEntry.objects.select_related("part").order_by(
        "kind", "part__sku", "currency", "-valid_from", "pk")
    return qs if scope_for(user=user).everything else qs.none()


def price_get_for_user(*, user: Any, pk: Any) -> PriceListEntry:
    entry = price_list_for_user(user=user).filter(pk=pk).first()
    if entry is None:
        raise Http404("No such price.")
    return entry
