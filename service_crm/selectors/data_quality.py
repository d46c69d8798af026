"""The data-quality report: master data the desk should fix, check by check, each finding
naming the record to open. Office staff only (others get no checks).

Accounts have no country of their own in this model: an account's country and address are its
sites', so "an account without a country" is an account without a site.
Assets cannot lack an equipment model or a site (both are required references); a serial
can be blank when a row was written around the forms, and a machine can hang under a line at
another site."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from django.db.models import Count, F, Q

from service_crm.models import Account, Asset, Contact, Site
from service_crm.selectors.access import scope_for
from service_crm.selectors.duplicates import account_duplicates_find, contact_duplicates_find

# Stored forms the master-data rules produce (service_crm.master_data); anything else was
# written around them (bulk loads, raw SQL, rows older than the rules).
E164 = r"^\+[1-9][0-9]{6,14}$"
EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
LIMIT = 50  # findings listed per check (the count is of all)


@dataclass(frozen=True)
class Finding:
    """One record to fix: `kind` (account, contact, site, asset), its id and account id (where
    the desk opens it), a label and what is wrong."""

    kind: str
    id: int
    account_id: int
    label: str
    problem: str


@dataclass
class Check:
    key: str
    title: str
    count: int = 0
    findings: list[Finding] = field(default_factory=list)


def _check(key: str, title: str, rows: list[Finding], count: int) -> Check:
    return Check(key, title, count, rows)


def data_quality_report(*, user: object, limit: int = LIMIT,
                        with_duplicates: bool = True) -> list[Check]:
    """Every check, in the order the desk shows them; empty for users outside the office."""
    if not scope_for(user=user).everything:
        return []
    checks: list[Check] = []

    no_site = Account.objects.annotate(n=Count("sites")).filter(n=0).order_by("name")
    checks.append(_check("account_no_site", "Accounts without a site (no address or country)",
                         [Finding("account", a.pk, a.pk, a.name, "no site")
                          for a in no_site[:limit]], no_site.count()))
    no_vat = Account.objects.filter(vat_id="").order_by("name")
    checks.append(_check("account_no_vat", "Accounts without a VAT id",
                         [Finding("account", a.pk, a.pk, a.name, "no VAT id")
                          for a in no_vat[:limit]], no_vat.count()))
    no_contact = Account.objects.annotate(n=Count("contacts")).filter(n=0).order_by("name")
    checks.append(_check("account_no_contact", "Accounts without a contact",
                         [Finding("account", a.pk, a.pk, a.name, "no contact")
                          for a in no_contact[:limit]], no_contact.count()))
    no_address = Site.objects.filter(Q(address="") | Q(city="")).select_related(
        "account").order_by("account__name", "name")
    checks.append(_check("site_no_address", "Sites without a street address or city",
                         [Finding("site", s.pk, s.account_id, f"{s.account.name} / {s.name}",
                                  "no " + " and no ".join(
                                      w for w, v in (("address", s.address), ("city", s.city))
                                      if not v))
                          for s in no_address[:limit]], no_address.count()))

    contacts = Contact.objects.select_related("account").order_by("account__name", "name")
    no_phone = contacts.filter(phone="")
    checks.append(_check("contact_no_phone", "Contacts without a phone number",
                         [_contact(c, "no phone") for c in no_phone[:limit]], no_phone.count()))
    bad = contacts.filter(~Q(email__regex=EMAIL) | (~Q(phone="") & ~Q(phone__regex=E164)))
    checks.append(_check("contact_invalid", "Contacts with an invalid email or phone number",
                         [_contact(c, _contact_problem(c)) for c in bad[:limit]], bad.count()))

    no_serial = Asset.objects.filter(serial="").select_related("site__account")
    checks.append(_check("asset_no_serial", "Assets without a serial number",
                         [_asset(a, "no serial") for a in no_serial[:limit]], no_serial.count()))
    elsewhere = Asset.objects.filter(parent__isnull=False).exclude(
        parent__site=F("site")).select_related("site__account", "parent__site").order_by(
        "serial")
    checks.append(_check("asset_parent_other_site", "Assets whose line stands at another site",
                         [_asset(a, f"part of {a.parent.serial} at "  # type: ignore[union-attr]
                                    f"{a.parent.site.name}, itself at "  # type: ignore[union-attr]
                                    f"{a.site.name}") for a in elsewhere[:limit]],
                         elsewhere.count()))

    if with_duplicates:
        pairs = account_duplicates_find(user=user, limit=100_000)
        checks.append(_check("account_duplicate", "Likely duplicate accounts",
                             [Finding("account", p.b_id, p.b_id, p.b_label,
                                      f"looks like {p.a_label} ({'; '.join(p.reasons)})")
                              for p in pairs[:limit]], len(pairs)))
        cpairs = contact_duplicates_find(user=user, limit=100_000)
        account_of = dict(Contact.objects.filter(
            pk__in=[p.b_id for p in cpairs[:limit]]).values_list("pk", "account_id"))
        checks.append(_check("contact_duplicate", "Likely duplicate contacts",
                             [Finding("contact", p.b_id, account_of[p.b_id], p.b_label,
                                      f"looks like {p.a_label} ({'; '.join(p.reasons)})")
                              for p in cpairs[:limit]], len(cpairs)))
    return checks


def _contact(c: Contact, problem: str) -> Finding:
    return Finding("contact", c.pk, c.account_id, f"{c.name} ({c.account.name})", problem)


def _contact_problem(c: Contact) -> str:
    problems = []
    if not re.match(EMAIL, c.email):
        problems.append(f"email {c.email!r} is not an address" if c.email else "no email")
    if c.phone and not re.match(E164, c.phone):
        problems.append(f"phone {c.phone!r} is not in international form")
    return "; ".join(problems)


def _asset(a: Asset, problem: str) -> Finding:
    return Finding("asset", a.pk, a.site.account_id, f"{a.serial or '(no serial)'} "
                   f"({a.site.account.name} / {a.site.name})", problem)
