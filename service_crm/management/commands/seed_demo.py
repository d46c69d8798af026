"""``manage.py seed_demo``: a realistic demo book of business for the service CRM.

Accounts in several industries with sites in four regions, hundreds of monitored assets whose
device ids match the simulator's demo fleet (``cmp-0001``, ``pmp-0001``, ...), contracts of
every tier (some up for renewal), warranty and uncovered assets, engineers per region, a parts
catalogue with stock, and demo logins. Re-running it adds nothing that is already there.

The equipment models are the shipped equipment profiles (``anomaly/profiles/*.yaml``),
imported into the catalogue like any manufacturer's own: their metrics, detector settings and
failure modes with parts lists. Each profile's ``device_prefix`` names the simulator's devices
of that kind, which the seeded assets claim.
"""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from anomaly.profiles import EquipmentProfile, load_profiles
from service_crm import models as m
from service_crm.adapters.profiles import equipment_profile_import
from service_crm.models.choices import ContractTier, Priority

REGIONS = {  # region -> (city, time zone)
    "north": ("Hamburg", "Europe/Berlin"), "south": ("Munich", "Europe/Berlin"),
    "west": ("Cologne", "Europe/Berlin"), "east": ("Leipzig", "Europe/Berlin"),
}


# The shipped equipment profiles, by the simulator's device-id prefix of their kind.
MODELS: dict[str, EquipmentProfile] = load_profiles()


def _skill(profile: EquipmentProfile) -> str:
    """The engineer skill the kind's repairs need (its failure modes')."""
    return next((fm.skill for fm in profile.failure_modes.values() if fm.skill),
                profile.equipment_type)


PART_NAMES = ("Bearing kit", "Shaft seal", "Air/oil filter", "Motor contactor", "Temperature "
              "sensor", "Vibration sensor", "Gasket set", "Cooling fan", "Pressure transmitter",
              "Coupling insert")
ACCOUNTS = (
    ("Nordwerk Foods GmbH", "food"), ("Hanse Cold Chain AG", "logistics"),
    ("Alpen Pharma GmbH", "pharma"), ("Rheinmetall Präzision KG", "machining"),
    ("Stadtwerke Elbtal", "water"), ("Bavaria Drinks GmbH", "food"),
    ("AutoTeile Sachsen GmbH", "automotive"), ("Kühlhaus Leipzig GmbH", "logistics"),
    ("MedChem Köln AG", "pharma"), ("Fräswerk Süd GmbH", "machining"),
    ("Wasserverband Ruhr", "water"), ("Karosseriebau West GmbH", "automotive"),
)
TIERS = {  # tier -> (covers parts, visits, SLA hours per priority (response, resolution), calendar)
    ContractTier.BRONZE: (False, 1, {Priority.P1: (16, 40), Priority.P2: (24, 64),
                                     Priority.P3: (40, 120), Priority.P4: (80, 200)}, "office"),
    ContractTier.SILVER: (False, 2, {Priority.P1: (8, 24), Priority.P2: (16, 40),
                                     Priority.P3: (24, 80), Priority.P4: (40, 120)}, "office"),
    ContractTier.GOLD: (True, 4, {Priority.P1: (4, 16), Priority.P2: (8, 24),
                                  Priority.P3: (16, 40), Priority.P4: (24, 80)}, "extended"),
    ContractTier.PLATINUM: (True, 6, {Priority.P1: (2, 8), Priority.P2: (4, 16),
                                      Priority.P3: (8, 24), Priority.P4: (16, 40)}, "24x7"),
}
DEMO_USERS = (  # username, password, role
    ("desk", "desk-demo", "Service desk"), ("engineer", "engineer-demo", "Field engineers"),
    ("manager", "manager-demo", "Managers"), ("customer", "customer-demo", "Customers"),
)


class Command(BaseCommand):
    help = __doc__.splitlines()[0] if __doc__ else ""

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--assets", type=int, default=400, help="monitored assets (400)")
        parser.add_argument("--prefixes", default="cmp,pmp,chl,cnc",
                            help="device-id prefixes, one equipment model each (cmp,pmp,chl,cnc)")
        parser.add_argument("--seed", type=int, default=42)

    def handle(self, *args: Any, **opts: Any) -> None:
        prefixes = [p.strip() for p in str(opts["prefixes"]).split(",") if p.strip()]
        unknown = [p for p in prefixes if p not in MODELS]
        if unknown:
            raise CommandError(f"--prefixes: unknown {unknown}; known: {sorted(MODELS)}")
        if opts["assets"] < 0:
            raise CommandError("--assets must be >= 0")
        counts = seed(assets=opts["assets"], prefixes=prefixes, seed=opts["seed"])
        self.stdout.write("seeded: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
        for line in seed_first_minutes():
            self.stdout.write(line)
        for line in seed_pipeline():
            self.stdout.write(line)
        for line in seed_master_data():
            self.stdout.write(line)
        self.stdout.write("demo logins (user / password):")
        for user, password, role in DEMO_USERS:
            self.stdout.write(f"  {user:9s} / {password:15s} {role}")


def _calendars() -> dict[str, m.BusinessCalendar]:
    office, _ = m.BusinessCalendar.objects.get_or_create(
        name="Office hours (DE)", defaults=dict(workdays=[1, 2, 3, 4, 5], opens=dt.time(8),
                                                 closes=dt.time(17)))
    extended, _ = m.BusinessCalendar.objects.get_or_create(
        name="Extended hours (DE)", defaults=dict(workdays=[1, 2, 3, 4, 5, 6], opens=dt.time(7),
                                                   closes=dt.time(20)))
    always, _ = m.BusinessCalendar.objects.get_or_create(
        name="24x7", defaults=dict(always_open=True, timezone="UTC"))
    return {"office": office, "extended": extended, "24x7": always}


def _catalogue(prefixes: list[str], rng: random.Random) -> dict[str, m.EquipmentModel]:
    warehouses = [m.Warehouse.objects.get_or_create(
        code=f"WH-{r.upper()}", defaults=dict(name=f"{city} depot", region=r))[0]
        for r, (city, _) in REGIONS.items()]
    out: dict[str, m.EquipmentModel] = {}
    for prefix in prefixes:
        profile = MODELS[prefix]
        # The parts the profile's failure modes list come first; the profile then brings the
        # model, its metrics and detector settings, and its failure modes with their parts.
        for i, pname in enumerate(PART_NAMES):
            part, created = m.SparePart.objects.get_or_create(
                sku=f"{prefix.upper()}-{i + 1:03d}",
                defaults=dict(name=f"{pname} ({profile.equipment_type})",
                              price=Decimal(rng.randrange(25, 900)) + Decimal("0.90")))
            if created:
                for wh in warehouses:
                    m.Stock.objects.create(part=part, warehouse=wh, quantity=rng.randrange(0, 25))
        em = m.EquipmentModel.objects.filter(name=profile.name).first()
        if em is None:
            em = equipment_profile_import(profile=profile)
            em.compatible_parts.add(*m.SparePart.objects.filter(
                sku__startswith=f"{prefix.upper()}-"))
        out[prefix] = em
        for task in ("Visual inspection and leak check", "Record operating values",
                     "Check and retighten electrical terminals"):
            m.ServiceTask.objects.get_or_create(
                equipment_model=em, name=task,
                defaults=dict(interval_days=180, skill=_skill(profile)))
    return out


def _users() -> dict[str, Any]:
    User = get_user_model()
    users: dict[str, Any] = {}
    for username, password, role in DEMO_USERS:
        group, _ = Group.objects.get_or_create(name=role)
        user, created = User.objects.get_or_create(
            username=username, defaults=dict(email=f"{username}@aftercare.demo"))
        if created:
            user.set_password(password)
            user.is_staff = username in ("desk", "manager")
            user.is_superuser = username == "manager"
            user.save()
        user.groups.add(group)
        users[username] = user
    Group.objects.get(name="Managers").permissions.add(
        Permission.objects.get(codename="approve_offer"))
    return users


@transaction.atomic
def seed(*, assets: int, prefixes: list[str], seed: int) -> dict[str, int]:
    rng = random.Random(seed)
    today = timezone.now().date()
    calendars = _calendars()
    models = _catalogue(prefixes, rng)
    users = _users()
    engineers = []
    per_region = max(3, assets // 800)  # roughly one engineer per 200 assets
    for region in REGIONS:
        for i in range(per_region):
            eng, _ = m.Engineer.objects.get_or_create(
                email=f"{region}.{i + 1}@aftercare.demo",
                defaults=dict(name=f"{region.title()} engineer {i + 1}", region=region,
                              skills=rng.sample([_skill(p) for p in MODELS.values()], 3),
                              warehouse=m.Warehouse.objects.get(code=f"WH-{region.upper()}")))
            engineers.append(eng)
    demo_engineer = engineers[0]
    if demo_engineer.user_id is None:
        demo_engineer.user = users["engineer"]
        demo_engineer.skills = sorted({_skill(p) for p in MODELS.values()})
        demo_engineer.save()

    accounts = []
    # About one account per 40 assets, at least the twelve named ones.
    n_accounts = max(len(ACCOUNTS), assets // 40)
    named = [(ACCOUNTS[k % len(ACCOUNTS)][0] if k < len(ACCOUNTS) else
              f"{ACCOUNTS[k % len(ACCOUNTS)][0]} ({k // len(ACCOUNTS) + 1})",
              ACCOUNTS[k % len(ACCOUNTS)][1]) for k in range(n_accounts)]
    for n, (name, industry) in enumerate(named):
        acc, created = m.Account.objects.get_or_create(
            name=name, defaults=dict(industry=industry, account_manager=users["manager"],
                                     segment=("enterprise", "midmarket", "smb")[n % 3]))
        accounts.append(acc)
        if not created:
            continue
        for i, region in enumerate(rng.sample(list(REGIONS), 1 + n % 3)):
            city, tz = REGIONS[region]
            m.Site.objects.create(account=acc, name=f"{city} plant {i + 1}", city=city,
                                  address=f"Industriestraße {rng.randrange(1, 200)}",
                                  timezone=tz, region=region)
        domain = (name.split()[0].lower().replace("ä", "ae").replace("ö", "oe")
                  + (f"-{n}" if n >= len(ACCOUNTS) else "") + ".example")
        for role, consent in (("technical", False), ("procurement", True),
                              ("decision_maker", n % 2 == 0), ("finance", False)):
            m.Contact.objects.create(
                account=acc, name=f"{role.replace('_', ' ').title()} at {name.split()[0]}",
                email=f"{role}@{domain}", roles=[role], offer_consent=consent,
                consent_given_at=timezone.now() - dt.timedelta(days=200) if consent else None,
                consent_method="web_form" if consent else "")
    customer_contact = m.Contact.objects.filter(account=accounts[0], roles__contains=["technical"]
                                                ).first()
    if customer_contact is not None and customer_contact.user_id is None:
        customer_contact.user = users["customer"]
        customer_contact.save()

    sites = list(m.Site.objects.filter(account__in=accounts).order_by("pk"))
    created_assets: list[m.Asset] = []
    for i in range(assets):
        prefix = prefixes[i % len(prefixes)]
        key = f"{prefix}-{i // len(prefixes) + 1:04d}"
        if m.DeviceLink.objects.filter(device_key=key).exists():
            continue
        installed = today - dt.timedelta(days=rng.randrange(60, 6 * 365))
        asset = m.Asset.objects.create(
            serial=f"{prefix.upper()}-{installed.year}-{i + 1:05d}", equipment_model=models[prefix],
            site=sites[rng.randrange(len(sites))], install_date=installed,
            warranty_end=installed + dt.timedelta(days=2 * 365))
        m.DeviceLink.objects.create(asset=asset, device_key=key)
        created_assets.append(asset)

    tiers = list(TIERS)
    for n, acc in enumerate(accounts):
        if n % 5 == 4 or acc.contracts.exists():
            continue  # every fifth account has no contract: offers for uncovered assets
        tier = tiers[n % len(tiers)]
        covers_parts, visits, sla, cal = TIERS[tier]
        # Every third contract ends within 90 days: renewal opportunities.
        end = today + dt.timedelta(days=rng.randrange(20, 85) if n % 3 == 0 else 300)
        acc_assets = [a for a in created_assets if a.site.account_id == acc.pk]
        contract = m.MaintenanceContract.objects.create(
            account=acc, number=f"MC-{today.year}-{n + 1:05d}", tier=tier,
            covers_parts=covers_parts, visits_per_year=visits, calendar=calendars[cal],
            start=end - dt.timedelta(days=365), end=end, auto_renew=n % 2 == 0,
            price=Decimal(len(acc_assets) * 900 + 1000 * (tiers.index(tier) + 1)))
        contract.assets.set([a for a in acc_assets if rng.random() < 0.8])
        for prio, (resp, res) in sla.items():
            m.SlaTarget.objects.create(contract=contract, priority=prio,
                                       response_h=Decimal(resp), resolution_h=Decimal(res))
    return {
        "accounts": m.Account.objects.count(), "sites": m.Site.objects.count(),
        "assets": m.Asset.objects.count(), "contracts": m.MaintenanceContract.objects.count(),
        "engineers": m.Engineer.objects.count(), "parts": m.SparePart.objects.count(),
    }


def demo_contract_pdf(*, contract: m.MaintenanceContract) -> bytes:
    """A one-page PDF naming the contract (what a signed contract scan stands in for)."""
    lines = [f"Maintenance contract {contract.number}", f"Customer: {contract.account.name}",
             f"Tier: {contract.get_tier_display()}",
             f"Term: {contract.start:%d %b %Y} - {contract.end:%d %b %Y}",
             f"Visits per year: {contract.visits_per_year}"]
    text = "BT /F1 14 Tf 72 770 Td 18 TL " + " ".join(
        "(" + ln.encode("latin-1", "replace").decode("latin-1").replace("\\", "\\\\")
        .replace("(", "\\(").replace(")", "\\)") + ") Tj T*" for ln in lines) + " ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font "
        b"<< /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d >>\nstream\n" % len(text.encode("latin-1")) + text.encode("latin-1")
        + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1, xref)
    return bytes(out)


def seed_first_minutes(*, now: dt.datetime | None = None) -> list[str]:
    """Something for every demo login before the first fault is detected: a job booked today
    for the `engineer` login (in its region, on a machine it has the skill for), a renewal
    offer sent to the `customer` login's account, and its contract as a PDF in the portal.
    Made through the real services (audited, on the timelines); each step once."""
    from django.core.files.base import ContentFile

    from service_crm.models.choices import OfferStatus, TicketSource
    from service_crm.services.contracts import contract_document_add
    from service_crm.services.offers import offer_create_renewal, offer_send
    from service_crm.services.tickets import ticket_open
    from service_crm.services.work_orders import work_order_propose_internal, work_order_schedule

    now = now or timezone.now()
    said: list[str] = []
    desk = get_user_model().objects.filter(username="desk").first()
    engineer = m.Engineer.objects.filter(user__username="engineer").first()
    customer = m.Contact.objects.filter(user__username="customer").select_related(
        "account").first()
    if desk is None or engineer is None or customer is None:
        return ["first minutes: demo users missing, nothing prepared"]
    summary = "Customer called: unusual noise at start-up (demo)"
    if not m.WorkOrder.objects.filter(engineer=engineer, ticket__summary=summary).exists():
        in_region = m.Asset.objects.filter(site__region=engineer.region).order_by("pk")
        asset = (in_region.filter(site__account=customer.account).first()
                 or in_region.first())
        if asset is not None:
            ticket = ticket_open(asset=asset, summary=summary, source=TicketSource.PHONE,
                                 priority=Priority.P2, actor=desk, now=now)
            with transaction.atomic():
                wo = work_order_propose_internal(ticket=ticket, now=now)
            start = now + dt.timedelta(minutes=30)
            work_order_schedule(work_order=wo, engineer=engineer, start=start,
                                end=start + dt.timedelta(hours=2), actor=desk, now=now)
            said.append(f"first minutes: {ticket.number} booked for `engineer` today "
                        f"({asset.serial}, {asset.site.name})")
    contract = (m.MaintenanceContract.objects.filter(account=customer.account)
                .order_by("end").first())
    if contract is not None:
        if not m.Offer.objects.filter(renews=contract).exists() and contract.end >= now.date():
            offer = offer_create_renewal(contract=contract, actor=desk, now=now)
            if m.Contact.objects.filter(account=contract.account, offer_consent=True).exists():
                offer = offer_send(offer=offer, actor=desk, now=now)
            said.append(f"first minutes: renewal offer {offer.number} "
                        f"{'sent' if offer.status == OfferStatus.SENT else 'drafted'} "
                        f"for `customer` ({contract.number})")
        if not contract.documents.exists():
            contract_document_add(
                contract=contract, title=f"Signed contract {contract.number}", actor=desk,
                file=ContentFile(demo_contract_pdf(contract=contract),
                                 name=f"{contract.number}.pdf"), now=now)
            said.append(f"first minutes: contract document for {contract.number} in the portal")
    return said


# A kind of machine that wears out within the demo fleet's ages (installed up to six years
# ago), so the desk finds ageing assets: a CNC spindle is rebuilt or retrofitted after ~4 years.
DEMO_SHORT_LIFE_YEARS = {"cnc": 4}


def seed_pipeline(*, now: dt.datetime | None = None) -> list[str]:
    """A sales pipeline for the forecast to show: opportunities at every stage, over the next
    months, for the `desk` and `manager` logins. One started from an account at risk, one from
    an ageing asset, one won through its accepted quote, one lost. Through the real services
    (audited, on the timelines); once (nothing is added while any opportunity exists)."""
    from service_crm.models.choices import OfferLineKind, OpportunityStage
    from service_crm.selectors.opportunities import account_risk_get, asset_age_get
    from service_crm.services.offers import offer_decide, offer_send
    from service_crm.services.opportunities import (
        QuoteLine,
        opportunity_create,
        opportunity_move,
        opportunity_quote_create,
        opportunity_start_from_account,
        opportunity_start_from_asset,
    )

    now = now or timezone.now()
    today = now.date()
    users = get_user_model().objects.filter(username__in=["desk", "manager"]).in_bulk(
        field_name="username")
    accounts = list(m.Account.objects.order_by("pk")[:12])
    if m.Opportunity.objects.exists():
        return []
    if len(users) < 2 or len(accounts) < 4:
        return ["pipeline: demo users or accounts missing, nothing seeded"]
    desk, manager = users["desk"], users["manager"]
    made: list[m.Opportunity] = []

    def day(n: int) -> dt.date:
        return today + dt.timedelta(days=n)

    made.append(opportunity_create(
        account=accounts[1], title="Two chillers for the new cold store", kind="new_equipment",
        value=Decimal("148000"), expected_close=day(110), actor=manager, now=now))
    upgrade = opportunity_create(
        account=accounts[2], title="Remote monitoring upgrade, all sites", kind="upgrade",
        value=Decimal("36000"), expected_close=day(45), actor=desk, now=now)
    made.append(opportunity_move(opportunity=upgrade, to=OpportunityStage.PROPOSE, actor=desk,
                                 now=now))
    negotiate = opportunity_create(
        account=accounts[3], title="Compressor station replacement", kind="new_equipment",
        value=Decimal("92000"), expected_close=day(25), actor=manager, now=now)
    negotiate = opportunity_move(opportunity=negotiate, to=OpportunityStage.PROPOSE,
                                 actor=manager, now=now)
    made.append(opportunity_move(opportunity=negotiate, to=OpportunityStage.NEGOTIATE,
                                 actor=manager, now=now, probability_pct=70))
    at_risk = next((a for a in accounts if account_risk_get(account=a, now=now)[0] > 0), None)
    if at_risk is not None:
        made.append(opportunity_start_from_account(
            account=at_risk, actor=desk, value=Decimal("18500"), expected_close=day(60),
            now=now))
    for prefix, years in DEMO_SHORT_LIFE_YEARS.items():
        m.EquipmentModel.objects.filter(name=MODELS[prefix].name, expected_life_years=15
                                        ).update(expected_life_years=years)
    ageing = next((a for a in m.Asset.objects.select_related("equipment_model")
                   .order_by("install_date", "pk")[:50]
                   if asset_age_get(asset=a, on=today).ageing), None)
    if ageing is not None:
        retrofit = opportunity_start_from_asset(asset=ageing, actor=desk, kind="retrofit",
                                                value=Decimal("27000"),
                                                expected_close=day(80), now=now)
        made.append(opportunity_move(opportunity=retrofit, to=OpportunityStage.PROPOSE,
                                     actor=desk, now=now))
    lost = opportunity_create(account=accounts[0], title="Spare pump for the bottling line",
                              kind="new_equipment", value=Decimal("11000"),
                              expected_close=day(20), actor=desk, now=now)
    made.append(opportunity_move(opportunity=lost, to=OpportunityStage.LOST, actor=desk,
                                 now=now, lost_reason="Budget moved to next year"))
    won = opportunity_create(account=accounts[0], title="Gold contract for the new line",
                             kind="contract", value=Decimal("9600"), expected_close=day(10),
                             actor=desk, now=now)
    quote = opportunity_quote_create(opportunity=won, actor=desk, now=now, lines=[
        QuoteLine(OfferLineKind.SERVICE, "Gold maintenance contract, 12 months", Decimal(1),
                  Decimal("8400")),
        QuoteLine(OfferLineKind.SERVICE, "Initial inspection and baseline", Decimal(1),
                  Decimal("1200"))])
    if m.Contact.objects.filter(account=won.account, offer_consent=True).exists():
        quote = offer_send(offer=quote, actor=desk, now=now)
        offer_decide(offer=quote, accepted=True, actor=desk, now=now,
                     po_reference="PO-DEMO-1")
    won.refresh_from_db()
    made.append(won)
    weighted = sum((o.weighted_value for o in made if o.is_open), Decimal(0))
    return [f"pipeline: {len(made)} opportunities "
            f"({'one from an at-risk account, ' if at_risk else ''}"
            f"{'one from an ageing asset, ' if ageing else ''}one won, one lost), "
            f"weighted open pipeline {weighted:.2f} {made[0].currency}"]


DEMO_LINE_MODEL = "Process line PL-1"


@transaction.atomic
def seed_master_data() -> list[str]:
    """Master data for the desk's hygiene pages to show: a process line with its machines at
    the account with the most (a machine at another site than its line is a data-quality
    finding); a second spelling of the first account with a contact at its email domain and
    no site (a likely duplicate, and an account without a site); at the second account the
    same person typed twice, the second time with a phone number as a legacy import wrote it
    (a likely duplicate contact with an invalid phone). Rows written as a bulk load would (the
    desk finds them, which is the point); once (nothing is added once the line's model
    exists)."""
    if m.EquipmentModel.objects.filter(name=DEMO_LINE_MODEL).exists():
        return []
    accounts = list(m.Account.objects.filter(name__in=[a for a, _ in ACCOUNTS[:2]])
                    .order_by("name"))
    first = next((a for a in accounts if a.name == ACCOUNTS[0][0]), None)
    second = next((a for a in accounts if a.name == ACCOUNTS[1][0]), None)
    if first is None or second is None:
        return ["master data: the named demo accounts are missing, nothing added"]
    said: list[str] = []
    model = m.EquipmentModel.objects.create(name=DEMO_LINE_MODEL, manufacturer="Aftercare demo",
                                            equipment_type="line", expected_life_years=20)
    # The line stands at the account with the most machines (assets are spread at random):
    # three machines at its site, one from another site of the account if it has one.
    biggest = m.Account.objects.annotate(n=Count("sites__assets")).order_by("-n", "pk").first()
    home = m.Site.objects.filter(account=biggest).annotate(n=Count("assets")).order_by(
        "-n", "pk").first()
    at_home = list(m.Asset.objects.filter(site=home, parent=None).order_by("pk")[:3])
    machines = at_home + list(m.Asset.objects.filter(site__account=biggest, parent=None)
                              .exclude(site=home).order_by("pk")[:1])
    if home is not None and len(machines) >= 2:
        line = m.Asset.objects.create(
            serial=f"LINE-{home.account_id:03d}-1", equipment_model=model, site=home,
            install_date=min(a.install_date for a in machines))
        m.Asset.objects.filter(pk__in=[a.pk for a in machines]).update(parent=line)
        elsewhere = sum(a.site_id != home.pk for a in machines)
        said.append(f"master data: line {line.serial} at {home.name} with {len(machines)} "
                    f"machines ({elsewhere} at another site)")
    twin = m.Account.objects.filter(name__iexact=first.name.replace(" GmbH", "")).first()
    if twin is None:
        # One VAT id, one company: the first account's, written on the twin too.
        if not first.vat_id:
            m.Account.objects.filter(pk=first.pk).update(vat_id="DE136695976")
        twin = m.Account.objects.create(name=first.name.replace(" GmbH", "").upper(),
                                        industry=first.industry, segment=first.segment,
                                        vat_id="DE136695976")
        domain = first.contacts.values_list("email", flat=True).first() or "@nordwerk.example"
        m.Contact.objects.create(account=twin, name="Einkauf Nordwerk",
                                 email="einkauf@" + domain.rpartition("@")[2])
        said.append(f"master data: likely duplicate account {twin.name!r} of {first.name!r}")
    original = second.contacts.order_by("pk").first()
    if original is not None and "Technical" in original.name:
        typo = original.name.replace("Technical", "Technicall", 1)
        m.Contact.objects.create(account=second, name=typo,
                                 email="t." + original.email, phone="040 12")
        said.append(f"master data: likely duplicate contact {typo!r} at {second.name}")
    return said
