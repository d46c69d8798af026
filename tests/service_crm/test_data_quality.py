"""The data-quality report: one rule per check, each finding naming the record to fix."""

from __future__ import annotations

from typing import Any

import pytest

from service_crm import models as m
from service_crm.selectors.data_quality import data_quality_report
from tests import factories as f
from tests.support.world import World

pytestmark = [pytest.mark.db, pytest.mark.django_db]


def _found(user: Any, **kw: Any) -> dict[str, set[tuple[str, int]]]:
    return {c.key: {(x.kind, x.id) for x in c.findings}
            for c in data_quality_report(user=user, **kw)}


def test_each_check_finds_its_records(world: World, desk_agent: Any) -> None:
    bare = f.AccountFactory(name="Bare Werke AG")  # no site, no contact
    m.Site.objects.filter(pk=world.site.pk).update(address="", city="Hamburg")
    # Rows written around the forms (a bulk load): not in their normalised form.
    m.Contact.objects.filter(pk=world.technical.pk).update(phone="")
    m.Contact.objects.filter(pk=world.buyer.pk).update(email="petra at nordwerk",
                                                       phone="040 1234567")
    other_site = f.SiteFactory(account=world.account, name="Kiel depot", address="Kai 1",
                               city="Kiel")
    line = f.AssetFactory(site=other_site, serial="LINE-K",
                          equipment_model=world.asset.equipment_model)
    m.Asset.objects.filter(pk=world.asset.pk).update(parent=line)
    blank = f.AssetFactory(site=other_site, serial="X",
                           equipment_model=world.asset.equipment_model)
    m.Asset.objects.filter(pk=blank.pk).update(serial="")
    twin = f.AccountFactory(name="NORDWERK FOODS")
    m.Account.objects.filter(pk=world.account.pk).update(vat_id="DE136695976")
    report = data_quality_report(user=desk_agent)
    found = {c.key: {(x.kind, x.id) for x in c.findings} for c in report}
    assert found["account_no_site"] == {("account", bare.pk), ("account", twin.pk)}
    assert found["account_no_contact"] == {("account", bare.pk), ("account", twin.pk)}
    assert found["account_no_vat"] == {("account", bare.pk), ("account", twin.pk)}
    assert found["site_no_address"] == {("site", world.site.pk)}
    assert ("contact", world.technical.pk) in found["contact_no_phone"]
    assert found["contact_invalid"] == {("contact", world.buyer.pk)}
    assert found["asset_no_serial"] == {("asset", blank.pk)}
    assert found["asset_parent_other_site"] == {("asset", world.asset.pk)}
    assert found["account_duplicate"] == {("account", twin.pk)}
    counts = {c.key: c.count for c in report}
    assert (counts["account_no_site"], counts["asset_parent_other_site"]) == (2, 1)
    problems = {x.problem for c in report for x in c.findings if x.id == world.buyer.pk}
    assert any("not an address" in p and "international form" in p for p in problems)


def test_clean_book_has_no_findings_and_duplicates_may_be_left_out(
        world: World, desk_agent: Any) -> None:
    m.Site.objects.filter(pk=world.site.pk).update(address="Hafenstr. 1", city="Hamburg")
    m.Contact.objects.filter(account=world.account).update(phone="+49401234567")
    m.Account.objects.filter(pk=world.account.pk).update(vat_id="DE136695976")
    found = _found(desk_agent, with_duplicates=False)
    assert "account_duplicate" not in found
    assert all(not v for v in found.values()), found


def test_limit_keeps_the_count(world: World, desk_agent: Any) -> None:
    for i in range(3):
        f.AccountFactory(name=f"Leer {i} GmbH")
    check = next(c for c in data_quality_report(user=desk_agent, limit=2, with_duplicates=False)
                 if c.key == "account_no_site")
    assert (len(check.findings), check.count) == (2, 3)


def test_only_office_staff_get_the_report(world: World) -> None:
    engineer_user = f.UserFactory(username="jana")
    world.engineer.user = engineer_user
    world.engineer.save()
    assert data_quality_report(user=f.fresh(engineer_user)) == []
