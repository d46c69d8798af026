"""CSV import of accounts, sites and assets (issue 16, item 4): every problem reported by line
and column, nothing stored when there is one, a dry run stores nothing, a second import of the
same file changes nothing."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service_crm import models as m
from service_crm.services.imports import master_data_import
from tests import factories as f
from tests.support.world import World

pytestmark = [pytest.mark.db, pytest.mark.django_db]

ACCOUNTS = ("name,industry,segment\nBrandt Anlagenbau GmbH,machining,smb\n"
            " Kältetechnik  Ost ,food,\n")


def test_accounts_imported_then_unchanged(world: World, desk_agent: Any) -> None:
    report = master_data_import(kind="accounts", text=ACCOUNTS, actor=desk_agent)
    assert (report.rows, report.created, report.errors) == (2, 2, [])
    assert m.Account.objects.filter(name="Kältetechnik Ost").exists()  # normalised
    again = master_data_import(kind="accounts", text=ACCOUNTS, actor=desk_agent)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)
    assert m.AuditLog.objects.filter(action="import.accounts").count() == 2


def test_dry_run_stores_nothing(world: World, desk_agent: Any) -> None:
    report = master_data_import(kind="accounts", text=ACCOUNTS, actor=desk_agent,
                                dry_run=True)
    assert (report.created, report.stored) == (2, False)
    assert not m.Account.objects.filter(name="Brandt Anlagenbau GmbH").exists()


def test_sites_and_assets_with_errors_by_line_and_nothing_half_imported(
        world: World, desk_agent: Any) -> None:
    sites = ("account,name,region,country,timezone\n"
             f"{world.account.name},Bremen depot,north,DE,Europe/Berlin\n"
             "Nobody GmbH,Somewhere,south,DE,Europe/Berlin\n"
             f"{world.account.name},Kiel,north,XX,Mars/Base\n"
             f"{world.account.name},,north,DE,Europe/Berlin\n")
    report = master_data_import(kind="sites", text=sites, actor=desk_agent)
    got = {(e.line, e.column) for e in report.errors}
    assert got == {(3, "account"), (4, "country"), (4, "timezone"), (5, "name")}
    assert not m.Site.objects.filter(name="Bremen depot").exists()  # line 2 was fine: rolled back
    ok = master_data_import(kind="sites", text=sites.split("Nobody")[0].rstrip("\n") + "\n",
                            actor=desk_agent)
    assert (ok.created, ok.errors) == (1, [])
    model = world.asset.equipment_model.name
    assets = ("serial,account,site,equipment_model,install_date,warranty_end\n"
              f"SN-NEW-1,{world.account.name},Bremen depot,{model},2025-03-01,2027-03-01\n"
              f"SN-NEW-2,{world.account.name},Bremen depot,{model},2025-13-01,\n"
              f"SN-NEW-3,{world.account.name},Bremen depot,No such model,2025-03-01,\n"
              f"SN-NEW-4,{world.account.name},Bremen depot,{model},2025-03-01,2024-01-01\n"
              f"SN-NEW-1,{world.account.name},Bremen depot,{model},2025-03-01,\n")
    report = master_data_import(kind="assets", text=assets, actor=desk_agent)
    assert {(e.line, e.column) for e in report.errors} == {
        (3, "install_date"), (4, "equipment_model"), (5, "warranty_end"), (6, "serial")}
    assert not m.Asset.objects.filter(serial="SN-NEW-1").exists()


def test_header_problems_and_roles(world: World, desk_agent: Any) -> None:
    report = master_data_import(kind="accounts", text="nam,colour\nX,red\n", actor=desk_agent)
    assert [e.message.split(":")[0] for e in report.errors] == ["Missing column(s)",
                                                                "Unknown column(s)"]
    with pytest.raises(ValidationError):
        master_data_import(kind="accounts", text=ACCOUNTS, actor=f.UserFactory(username="x"))
    with pytest.raises(ValidationError):
        master_data_import(kind="contracts", text=ACCOUNTS, actor=desk_agent)


@given(text=st.text(max_size=300))
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_any_text_gives_a_report_not_a_crash(world: World, desk_agent: Any, text: str) -> None:
    for kind in ("accounts", "sites", "assets"):
        report = master_data_import(kind=kind, text=text, actor=desk_agent, dry_run=True)
        assert report.rows >= 0


def test_broken_csv_is_reported_not_raised(world: World, desk_agent: Any) -> None:
    # Found by the property test: a bare carriage return inside a field.
    for text in ('name\n"a\r', "name\na\rb\n", "name\r\nX AG\r\n"):
        report = master_data_import(kind="accounts", text=text, actor=desk_agent,
                                    dry_run=True)
        assert report.rows >= 1
    quoted = master_data_import(kind="accounts", text='name\n"Line\nbreak AG"\n',
                                actor=desk_agent, dry_run=True)
    assert (quoted.rows, quoted.errors) == (1, [])


def test_an_import_that_changes_a_stored_record_updates_it(world: World, desk_agent: Any) -> None:
    text = f"name,segment\n{world.account.name},enterprise\n"
    report = master_data_import(kind="accounts", text=text, actor=desk_agent)
    assert (report.updated, report.unchanged) == (1, 0)
    world.account.refresh_from_db()
    assert world.account.segment == "enterprise"


def _asset_rows(world: World, *rows: tuple[str, str]) -> str:
    model = world.asset.equipment_model.name
    return "serial,account,site,equipment_model,install_date,parent\n" + "".join(
        f"{serial},{world.account.name},{world.site.name},{model},2010-03-01,{parent}\n"
        for serial, parent in rows)


def test_parents_resolved_in_any_order_and_from_stored_assets(
        world: World, desk_agent: Any) -> None:
    # The machines come before their line; LINE-1 itself belongs to the stored asset.
    text = _asset_rows(world, ("M-1", "LINE-1"), ("M-2", "LINE-1"),
                       ("LINE-1", world.asset.serial))
    dry = master_data_import(kind="assets", text=text, actor=desk_agent, dry_run=True)
    assert (dry.errors, dry.created, dry.stored) == ([], 3, False)
    assert dry.parents == [(2, "M-1", "LINE-1"), (3, "M-2", "LINE-1"),
                           (4, "LINE-1", world.asset.serial)]
    assert not m.Asset.objects.filter(serial="LINE-1").exists()
    report = master_data_import(kind="assets", text=text, actor=desk_agent)
    assert (report.errors, report.created) == ([], 3)
    line = m.Asset.objects.get(serial="LINE-1")
    assert sorted(line.children.values_list("serial", flat=True)) == ["M-1", "M-2"]
    assert line.parent == world.asset
    again = master_data_import(kind="assets", text=text, actor=desk_agent)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 3)
    assert m.Asset.objects.get(serial="M-1").parent == line  # kept, not lost on the way
    moved = master_data_import(kind="assets", text=_asset_rows(world, ("M-2", "")),
                               actor=desk_agent)
    assert (moved.updated, moved.errors, moved.parents) == (1, [], [(2, "M-2", "")])
    assert m.Asset.objects.get(serial="M-2").parent is None


def test_unknown_parent_cycle_and_other_account_reported_by_line(
        world: World, desk_agent: Any) -> None:
    other_site = f.SiteFactory(account=f.AccountFactory(name="Elsewhere AG"), name="Plant")
    f.AssetFactory(site=other_site, serial="FOREIGN-1",
                   equipment_model=world.asset.equipment_model)
    # F-1 hangs under the stored asset, which the file then hangs under F-1.
    text = _asset_rows(world, ("A-1", "B-1"), ("B-1", "A-1"), ("C-1", "NOPE"),
                       ("D-1", "FOREIGN-1"), ("E-1", "E-1"), ("F-1", world.asset.serial),
                       (world.asset.serial, "F-1"))
    report = master_data_import(kind="assets", text=text, actor=desk_agent, dry_run=True)
    by_line = {e.line: e.message for e in report.errors}
    assert {e.column for e in report.errors} == {"parent"}
    assert set(by_line) == {2, 3, 4, 5, 6, 7, 8}  # every line of a cycle says so
    assert all("cycle" in by_line[n] for n in (2, 3, 7, 8))
    assert "No asset with serial 'NOPE'" in by_line[4]
    assert "another account" in by_line[5]
    assert "own parent" in by_line[6]
    assert not m.Asset.objects.filter(serial="A-1").exists()


def test_contacts_imported_normalised_updated_and_checked_by_line(
        world: World, desk_agent: Any) -> None:
    text = ("account,name,email,phone,roles\n"
            f"{world.account.name}, Jo  Meier ,JO@Nordwerk.example,040 1234567,technical;finance\n"
            f"{world.account.name},Bad Phone,bad@nordwerk.example,12,\n"
            "Nobody GmbH,X,x@nobody.example,,\n"
            f"{world.account.name},Jo again,jo@nordwerk.example,,\n"
            f"{world.account.name},Wrong Role,r@nordwerk.example,,astronaut\n")
    report = master_data_import(kind="contacts", text=text, actor=desk_agent)
    assert {(e.line, e.column) for e in report.errors} == {
        (3, "phone"), (4, "account"), (5, "email"), (6, "roles")}
    assert not m.Contact.objects.filter(email="jo@nordwerk.example").exists()
    good = text.split("\n")[0] + "\n" + text.split("\n")[1] + "\n"
    report = master_data_import(kind="contacts", text=good, actor=desk_agent)
    assert (report.created, report.errors) == (1, [])
    jo = m.Contact.objects.get(email="jo@nordwerk.example")
    assert (jo.name, jo.phone, jo.roles) == ("Jo Meier", "+49401234567", ["finance", "technical"])
    renamed = master_data_import(kind="contacts", text=good.replace(" Jo  Meier ", "Jo Meyer"),
                                 actor=desk_agent)
    assert (renamed.created, renamed.updated) == (0, 1)
    assert m.Contact.objects.get(pk=jo.pk).name == "Jo Meyer"


def test_account_vat_ids_imported_normalised_and_checked_by_line(
        world: World, desk_agent: Any) -> None:
    text = ("name,vat_id\nBrandt Anlagenbau GmbH,de 136 695 976\n"
            "Kältetechnik Ost,DE136695977\n")
    report = master_data_import(kind="accounts", text=text, actor=desk_agent)
    assert [(e.line, e.column) for e in report.errors] == [(3, "vat_id")]
    assert not m.Account.objects.filter(name="Brandt Anlagenbau GmbH").exists()
    ok = master_data_import(kind="accounts", text=text.splitlines()[0] + "\n"
                            + text.splitlines()[1] + "\n", actor=desk_agent)
    assert ok.errors == []
    assert m.Account.objects.get(name="Brandt Anlagenbau GmbH").vat_id == "DE136695976"
