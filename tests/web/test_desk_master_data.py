"""Desk pages for data hygiene (issue 16, item 4): likely duplicates, merge (asked first,
audited), CSV import with a dry run and errors by line; desk roles only."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from service_crm import models as m
from tests import factories as f
from tests.support.world import ServedWorld

pytestmark = pytest.mark.db


def _csv(text: str) -> SimpleUploadedFile:
    return SimpleUploadedFile("data.csv", text.encode(), content_type="text/csv")


def test_desk_sees_duplicates_and_merges_after_confirming(
        world: ServedWorld, desk_agent: Any, browser_client: Any) -> None:
    dup = f.AccountFactory(name="NORDWERK FOODS")
    f.ContactFactory(account=dup, email="max@nordwerk.example")
    desk = browser_client(desk_agent)
    page = desk.get("/desk/data/duplicates/").content.decode()
    assert "NORDWERK FOODS" in page
    assert "same name apart from case" in page
    url = f"/desk/data/merge/?kind=account&keep={world.north.account.pk}&merge={dup.pk}"
    ask = desk.get(url)
    assert ask.status_code == 200
    assert "Every contact, site" in ask.content.decode()
    assert m.Account.objects.filter(pk=dup.pk).exists()  # asking merges nothing
    done = desk.post("/desk/data/merge/", {"kind": "account", "keep": world.north.account.pk,
                                           "merge": dup.pk, "confirm": "yes"})
    assert done.status_code == 302
    assert done["Location"] == f"/desk/accounts/{world.north.account.pk}/"
    assert not m.Account.objects.filter(pk=dup.pk).exists()
    assert m.Contact.objects.filter(account=world.north.account,
                                    email="max@nordwerk.example").exists()
    assert m.AuditLog.objects.get(action="account.merge").actor_label == "desk"
    assert desk.get("/desk/data/merge/?kind=account&keep=x&merge=1").status_code == 400


def test_merge_and_import_are_for_the_desk_only(
        world: ServedWorld, browser_client: Any, customer_user: Any, field_engineer: Any) -> None:
    dup = f.AccountFactory(name="NORDWERK FOODS")
    for user in (customer_user, field_engineer):
        client = browser_client(user)
        assert client.get("/desk/data/duplicates/").status_code == 403
        assert client.post("/desk/data/merge/", {
            "kind": "account", "keep": world.north.account.pk, "merge": dup.pk,
            "confirm": "yes"}).status_code == 403
        assert client.post("/desk/data/import/", {
            "kind": "accounts", "file": _csv("name\nX GmbH\n")}).status_code == 403
    assert m.Account.objects.filter(pk=dup.pk).exists()
    assert not m.Account.objects.filter(name="X GmbH").exists()


def test_import_page_dry_run_then_store(world: ServedWorld, desk_agent: Any,
                                        browser_client: Any) -> None:
    desk = browser_client(desk_agent)
    assert desk.get("/desk/data/import/").status_code == 200
    text = "name,segment\nBrandt Anlagenbau GmbH,smb\nKiel Kälte AG,giant\n"
    bad = desk.post("/desk/data/import/", {"kind": "accounts", "file": _csv(text),
                                           "dry_run": "on"})
    assert bad.status_code == 400
    body = bad.content.decode()
    assert "Nothing stored: 1 problem(s)" in body
    assert "<td>3</td><td>segment</td>" in body
    good = text.replace("giant", "smb")
    dry = desk.post("/desk/data/import/", {"kind": "accounts", "file": _csv(good),
                                           "dry_run": "on"})
    assert "Dry run: nothing stored" in dry.content.decode()
    assert not m.Account.objects.filter(name="Brandt Anlagenbau GmbH").exists()
    stored = desk.post("/desk/data/import/", {"kind": "accounts", "file": _csv(good)})
    assert stored.status_code == 200
    assert "Imported" in stored.content.decode()
    assert m.Account.objects.filter(name__in=["Brandt Anlagenbau GmbH", "Kiel Kälte AG"]
                                    ).count() == 2
    latin1 = desk.post("/desk/data/import/", {"kind": "accounts", "file": SimpleUploadedFile(
        "x.csv", "name\nKälte\n".encode("latin-1"))})
    assert latin1.status_code == 400
    assert "not UTF-8" in latin1.content.decode()
