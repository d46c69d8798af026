"""Duplicate accounts and contacts found (rapidfuzz) and merged with every related row moved
(issue 16, item 4)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.core.exceptions import ValidationError

from service_crm import models as m
from service_crm.models.choices import InvoiceStatus
from service_crm.selectors.duplicates import (
    account_duplicates_find,
    contact_duplicates_find,
    name_key,
)
from service_crm.services.merge import account_merge, contact_merge
from tests import factories as f
from tests.support.world import NOW, World

pytestmark = [pytest.mark.db, pytest.mark.django_db]


def test_name_key_drops_case_punctuation_and_legal_form() -> None:
    assert name_key("ACME Kompressoren GmbH") == name_key("Acme-Kompressoren  gmbh & Co. KG")
    assert name_key("Nordwerk Foods AG") == "nordwerk foods"
    assert name_key("") == ""


def test_finds_likely_duplicate_accounts(world: World, desk_agent: Any) -> None:
    a = f.AccountFactory(name="ACME Kompressoren GmbH")
    b = f.AccountFactory(name="Acme Kompressoren")
    c = f.AccountFactory(name="Acme Kompresoren AG")  # a typo
    f.AccountFactory(name="Zeta Pumpen KG")
    d = f.AccountFactory(name="Brandt Anlagenbau")
    e = f.AccountFactory(name="Brandt Anlagen Service")  # only alike with a shared domain
    f.ContactFactory(account=d, email="x@brandt.de")
    f.ContactFactory(account=e, email="y@brandt.de")
    pairs = {(p.a_id, p.b_id): p for p in account_duplicates_find(user=desk_agent)}
    assert pairs[(a.pk, b.pk)].score == 100
    assert "same name" in pairs[(a.pk, b.pk)].reasons[0]
    assert (a.pk, c.pk) in pairs
    assert (b.pk, c.pk) in pairs
    assert "brandt.de" in " ".join(pairs[(d.pk, e.pk)].reasons)
    ids = {i for pair in pairs for i in pair}
    assert world.account.pk not in ids
    assert not any(p.a_label.startswith("Zeta") or p.b_label.startswith("Zeta")
                   for p in pairs.values())
    assert account_duplicates_find(user=f.UserFactory(username="nobody")) == []


def test_finds_likely_duplicate_contacts(world: World, desk_agent: Any) -> None:
    other = f.AccountFactory(name="Other GmbH")
    twin = f.ContactFactory(account=other, email=world.buyer.email.upper())
    typo = f.ContactFactory(account=world.account, name="Petra Einkaufs",
                            email="petra.private@example.org")
    pairs = {(p.a_id, p.b_id): p for p in contact_duplicates_find(user=desk_agent)}
    assert "same email" in pairs[(world.buyer.pk, twin.pk)].reasons[0]
    assert "alike" in pairs[(world.buyer.pk, typo.pk)].reasons[0]
    assert (world.buyer.pk, world.technical.pk) not in pairs


def test_account_merge_moves_everything(world: World, desk_agent: Any) -> None:
    keep = world.account
    dup = f.AccountFactory(name="Nordwerk Foods")
    site = f.SiteFactory(account=dup, name=world.site.name, region="north")
    same_person = f.ContactFactory(account=dup, name="Petra E.",
                                   email=world.buyer.email.upper(), roles=["billing"])
    new_person = f.ContactFactory(account=dup, name="Max Neu", email="max@nordwerk.de")
    asset = f.AssetFactory(site=site, equipment_model=world.asset.equipment_model)
    contract = f.ContractFactory(account=dup, start=dt.date(2026, 1, 1),
                                 end=dt.date(2026, 12, 31))
    m.Interaction.objects.create(account=dup, contact=same_person, kind="call",
                                 summary="Called about the invoice", at=NOW)
    for account in (keep, dup):
        m.Invoice.objects.create(account=account, created_at=NOW)
    moved = account_merge(keep=keep, merge=dup, actor=desk_agent, now=NOW)
    assert not m.Account.objects.filter(pk=dup.pk).exists()
    assert moved["contact"] == 1
    assert moved["contact merged"] == 1
    site.refresh_from_db()
    assert (site.account_id, site.name) == (keep.pk, f"{world.site.name} (Nordwerk Foods)")
    asset.refresh_from_db()
    assert asset.site.account_id == keep.pk
    contract.refresh_from_db()
    assert contract.account_id == keep.pk
    assert m.Contact.objects.get(pk=new_person.pk).account_id == keep.pk
    buyer = m.Contact.objects.get(pk=world.buyer.pk)
    assert "billing" in buyer.roles
    assert m.Interaction.objects.get(summary="Called about the invoice").contact_id == buyer.pk
    assert m.Invoice.objects.filter(account=keep, status=InvoiceStatus.DRAFT).count() == 1
    audit = m.AuditLog.objects.get(action="account.merge")
    assert (audit.object_id, audit.before["name"], audit.actor_label) == (
        str(dup.pk), "Nordwerk Foods", "desk")
    assert m.Interaction.objects.filter(account=keep,
                                        summary__startswith="Account 'Nordwerk Foods'").exists()


def test_merge_rules(world: World, desk_agent: Any) -> None:
    dup = f.AccountFactory(name="Nordwerk Foods")
    with pytest.raises(ValidationError) as err:
        account_merge(keep=world.account, merge=dup, actor=f.UserFactory(username="x"))
    assert "actor" in err.value.message_dict
    with pytest.raises(ValidationError):
        account_merge(keep=dup, merge=dup, actor=desk_agent)
    elsewhere = f.ContactFactory(account=dup, email="x@y.de")
    with pytest.raises(ValidationError) as err:
        contact_merge(keep=world.buyer, merge=elsewhere, actor=desk_agent)
    assert "merge the accounts" in err.value.message_dict["merge"][0]
    assert m.Account.objects.filter(pk=dup.pk).exists()


def test_contact_merge_carries_login_and_consent(world: World, desk_agent: Any) -> None:
    user = f.UserFactory(username="petra")
    dup = f.ContactFactory(account=world.account, name="Petra Einkauf",
                           email="petra@home.example", user=user, phone="+49401234567")
    moved = contact_merge(keep=world.technical, merge=dup, actor=desk_agent, now=NOW)
    keep = m.Contact.objects.get(pk=world.technical.pk)
    assert (keep.user_id, keep.phone) == (user.pk, "+49401234567")
    assert moved["portal login"] == 1
    assert not m.Contact.objects.filter(pk=dup.pk).exists()
    assert m.AuditLog.objects.filter(action="contact.merge", object_id=str(dup.pk)).exists()


def test_numbered_branches_are_not_duplicates(world: World, desk_agent: Any) -> None:
    a = f.AccountFactory(name="Stadtwerke Kiel Werk 1")
    b = f.AccountFactory(name="Stadtwerke Kiel Werk 2")
    c = f.AccountFactory(name="STADTWERKE KIEL WERK 1 GmbH")
    pairs = {(p.a_id, p.b_id) for p in account_duplicates_find(user=desk_agent)}
    assert (a.pk, c.pk) in pairs
    assert (a.pk, b.pk) not in pairs
    assert (b.pk, c.pk) not in pairs


def test_accounts_sharing_a_vat_id_are_a_pair_whatever_their_names(
        world: World, desk_agent: Any) -> None:
    a = f.AccountFactory(name="Brandt Anlagenbau GmbH", vat_id="DE136695976")
    b = f.AccountFactory(name="BAB Kältetechnik", vat_id="DE136695976")
    c = f.AccountFactory(name="Brandt Anlagenbau", vat_id="DE136695976")  # alike and same VAT
    f.AccountFactory(name="Zeta Pumpen KG", vat_id="ATU13585627")
    pairs = {(p.a_id, p.b_id): p for p in account_duplicates_find(user=desk_agent)}
    assert pairs[(a.pk, b.pk)].reasons == ("same VAT id DE136695976",)
    assert pairs[(a.pk, c.pk)].reasons[-1] == "same VAT id DE136695976"
    assert pairs[(a.pk, c.pk)].score == 100  # the name rule found it too
    assert len(pairs[(a.pk, c.pk)].reasons) == 2
    assert not [p for p in pairs.values() if "Zeta" in p.a_label + p.b_label]
