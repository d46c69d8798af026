"""Master data: names trimmed, emails case-insensitively unique per account, phone numbers in
E.164, ISO country codes; errors keyed by the field; and the migration that cleans old rows."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor

from service_crm import models as m
from service_crm.master_data import normalise_country, normalise_phone
from tests import factories as f

pytestmark = [pytest.mark.db, pytest.mark.django_db]


def _errors(obj: Any) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as err:
        obj.full_clean()
    return err.value.message_dict


def test_account_name_is_trimmed_and_unique_whatever_the_case() -> None:
    acme = m.Account(name="  ACME   Kompressoren GmbH ")
    acme.full_clean()
    acme.save()
    assert acme.name == "ACME Kompressoren GmbH"
    assert _errors(m.Account(name="Acme Kompressoren GmbH ")) == {
        "name": ["An account named 'ACME Kompressoren GmbH' already exists."]}
    acme.full_clean()  # the account itself is no duplicate of itself


def test_contact_email_lower_cased_and_unique_per_account() -> None:
    account = f.AccountFactory()
    f.SiteFactory(account=account, country="DE")
    jo = m.Contact(account=account, name=" Jo  Berg ", email="Jo@ACME.de", phone="040 1234567")
    jo.full_clean()
    jo.save()
    assert (jo.name, jo.email, jo.phone) == ("Jo Berg", "jo@acme.de", "+49401234567")
    assert _errors(m.Contact(account=account, name="Jo", email="JO@ACME.DE")) == {
        "email": ["jo@acme.de is already a contact at this account."]}
    # the database says so too, for rows written without full_clean()
    with pytest.raises(IntegrityError), transaction.atomic():
        m.Contact.objects.create(account=account, name="Jo", email="JO@acme.DE")
    other = m.Contact(account=f.AccountFactory(), name="Jo", email="JO@ACME.DE")
    other.full_clean()  # another account may know the same person


def test_phone_read_in_the_sites_country_and_bad_numbers_keyed_by_field() -> None:
    account = f.AccountFactory()
    f.SiteFactory(account=account, country="AT")
    c = m.Contact(account=account, name="Eva", email="eva@example.at", phone="01 5880")
    c.full_clean()
    assert c.phone == "+4315880"
    c.phone = "+44 20 7946 0958"  # a number with its country code stays in its country
    c.full_clean()
    assert c.phone == "+442079460958"
    c.phone = "12"
    assert list(_errors(c)) == ["phone"]
    c.phone = "not a number"
    assert "not a phone number" in _errors(c)["phone"][0]
    c.phone = ""
    c.full_clean()


def test_site_country_is_an_iso_code() -> None:
    site = f.SiteFactory.build(account=f.AccountFactory(), country="nl", name=" Rotterdam  hub")
    site.full_clean()
    assert (site.country, site.name) == ("NL", "Rotterdam hub")
    site.country = "XX"
    assert _errors(site)["country"] == [
        "'XX' is not an ISO 3166 country code (e.g. DE, AT, NL)."]


def test_normalisers_at_the_boundary() -> None:
    assert normalise_country("at") == "AT"
    with pytest.raises(ValueError, match="ISO 3166"):
        normalise_country("Germany")
    assert normalise_phone("+49 (0)40 123 4567", region="FR") == "+49401234567"
    assert normalise_phone("  ", region="DE") == ""


@pytest.mark.django_db(transaction=True)
def test_migration_merges_duplicate_contacts_and_normalises() -> None:
    before, after = [("service_crm", "0011_webhook_outbox")], [
        ("service_crm", "0012_master_data_normalised")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    apps = executor.loader.project_state(before).apps
    Account, Contact = apps.get_model("service_crm", "Account"), apps.get_model(
        "service_crm", "Contact")
    Site, Interaction = apps.get_model("service_crm", "Site"), apps.get_model(
        "service_crm", "Interaction")
    account = Account.objects.create(name="Acme GmbH ")
    Site.objects.create(account=account, name="Hamburg", country="de", region="north")
    jo = Contact.objects.create(account=account, name="Jo", email="jo@acme.de", roles=["technical"])
    dup = Contact.objects.create(account=account, name="Jo B.", email=" JO@ACME.DE",
                                 phone="040 1234567", roles=["finance"], offer_consent=True,
                                 consent_given_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
                                 consent_method="email")
    Interaction.objects.create(account=account, contact=dup, kind="call", summary="Called",
                               at=dt.datetime(2026, 1, 2, tzinfo=dt.UTC))
    Contact.objects.create(account=account, name="Ann", email="Ann@Acme.de", phone="garbage")

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(after)
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())  # back to the latest for other tests

    contacts = {c.email: c for c in m.Contact.objects.filter(account_id=account.pk)}
    assert set(contacts) == {"jo@acme.de", "ann@acme.de"}
    kept = contacts["jo@acme.de"]
    assert kept.pk == jo.pk
    assert sorted(kept.roles) == ["finance", "technical"]
    assert (kept.offer_consent, kept.consent_method, kept.phone) == (True, "email",
                                                                     "+49401234567")
    assert m.Interaction.objects.get(summary="Called").contact_id == jo.pk
    assert contacts["ann@acme.de"].phone == "garbage"  # left for the desk to fix
    assert m.Account.objects.get(pk=account.pk).name == "Acme GmbH"
    assert m.Site.objects.get(account_id=account.pk).country == "DE"
    audit = m.AuditLog.objects.get(action="contact.merged_duplicate")
    assert (audit.object_id, audit.after) == (str(dup.pk), {"merged_into": jo.pk,
                                                            "login_moved": False})


def test_module_examples_run() -> None:
    import doctest

    from service_crm import master_data

    assert doctest.testmod(master_data).failed == 0


def test_vat_id_compact_checked_and_keyed_by_its_field() -> None:
    acme = m.Account(name="Acme Kompressoren GmbH", vat_id=" de 136 695 976 ")
    acme.full_clean()
    assert acme.vat_id == "DE136695976"
    assert "vat_id" in _errors(m.Account(name="Wrong digit GmbH", vat_id="DE136695977"))
    assert "vat_id" in _errors(m.Account(name="No prefix GmbH", vat_id="136695976"))
    blank = m.Account(name="Blank GmbH", vat_id="  ")
    blank.full_clean()
    assert blank.vat_id == ""
