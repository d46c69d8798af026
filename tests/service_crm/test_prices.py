"""Price look-ups: one at a time, and for a bill of materials in one query."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from service_crm import models as m
from service_crm.selectors.prices import labour_rate_on, part_price_on, prices_on
from tests import factories as f
from tests.support.world import NOW, World

pytestmark = [pytest.mark.db, pytest.mark.django_db]
DAY = NOW.date()


def _entry(*, part: m.SparePart | None, price: str, start: int, end: int | None = None,
           currency: str = "EUR") -> None:
    m.PriceListEntry.objects.create(
        kind="part" if part is not None else "labour", part=part, currency=currency,
        unit_price=Decimal(price), valid_from=DAY + dt.timedelta(days=start),
        valid_until=None if end is None else DAY + dt.timedelta(days=end), updated_at=NOW)


def test_prices_for_a_bill_of_materials_equal_the_one_at_a_time_look_ups(
        world: World, django_assert_num_queries) -> None:
    overlapping, unlisted, expired = world.part, f.SparePartFactory(), f.SparePartFactory()
    _entry(part=overlapping, price="80.00", start=-30)
    _entry(part=overlapping, price="90.00", start=-5)          # the latest start wins
    _entry(part=overlapping, price="95.00", start=3)           # not yet valid
    _entry(part=overlapping, price="70.00", start=-5, currency="USD")
    _entry(part=expired, price="10.00", start=-30, end=-1)     # list price again
    _entry(part=None, price="100.00", start=-30)
    _entry(part=None, price="120.00", start=-2, end=5)
    parts = [overlapping, unlisted, expired]
    for day in (DAY - dt.timedelta(days=40), DAY - dt.timedelta(days=3), DAY,
                DAY + dt.timedelta(days=4), DAY + dt.timedelta(days=6)):
        with django_assert_num_queries(1):
            got = prices_on(parts=parts, on=day)
        assert got.labour == labour_rate_on(on=day)
        assert [got.part(p) for p in parts] == [part_price_on(part=p, on=day) for p in parts]
    assert prices_on(parts=parts, on=DAY).part(overlapping) == Decimal("90.00")
    assert prices_on(parts=parts, on=DAY).labour == Decimal("120.00")


def test_prices_without_parts_give_the_labour_rate(world: World) -> None:
    _entry(part=None, price="100.00", start=-30)
    assert prices_on(parts=[], on=DAY).labour == Decimal("100.00")
    assert prices_on(parts=[], on=DAY).parts == {}
