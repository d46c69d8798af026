"""Personas and a two-customer world for the web tests.

Nordwerk Foods (region north) and Südhof Logistik (region south) each have a monitored
compressor under contract and an uncovered pump. One alert per asset goes through the real
alert service, which opens episodes, tickets, proposed work orders and draft offers; the
offers are then sent through the real offer service. Every persona belongs to one side, so
each test can ask for the other side's object and expect a 404.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from service_crm import models as m
from service_crm.services.alerts import alert_ingest
from service_crm.services.api_tokens import api_token_create
from service_crm.services.offers import offer_send
from tests import factories as f
from web.roles import Role, assign_role

PASSWORD = "correct horse battery staple"


def minimal_pdf() -> bytes:
    """A real one-page PDF (what the upload check parses), made by pypdf."""
    import io

    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


@dataclass
class Side:
    """One customer's world: what its users may see and the others may not."""

    account: m.Account
    asset: m.Asset
    pump: m.Asset
    engineer: m.Engineer
    contact: m.Contact
    episode: m.Episode
    alert: m.Alert
    ticket: m.Ticket
    work_order: m.WorkOrder
    offer: m.Offer


@dataclass
class World:
    north: Side
    south: Side
    part: m.SparePart
    warehouse: m.Warehouse
    now: dt.datetime


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    # The production hasher is deliberately slow (about half a second per user here).
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _clear_login_limits(request: pytest.FixtureRequest) -> Iterator[None]:
    """The dashboard counts in the cache, which is in the database: no test inherits
    another's (tests without the database have no cache to clear). The log-in limiter's rows
    are in a CRM table, rolled back or flushed with the test's database."""
    names = set(request.fixturenames)
    if request.node.get_closest_marker("django_db") is None and not names & {
            "db", "transactional_db", "live_server"}:
        yield
        return
    request.getfixturevalue("transactional_db" if names & {"transactional_db", "live_server"}
                            else "db")
    cache.clear()
    yield
    cache.clear()


def _user(username: str) -> Any:
    user = f.UserFactory(username=username)
    user.set_password(PASSWORD)
    user.save()
    return user


def _side(name: str, region: str, tag: str, *, part: m.SparePart, wh: m.Warehouse,
          now: dt.datetime) -> Side:
    account = f.AccountFactory(name=name)
    site = f.SiteFactory(account=account, name=f"{name} plant", region=region)
    fm = f.FailureModeFactory()
    m.BomLine.objects.create(failure_mode=fm, part=part, quantity=1)
    m.ServiceTask.objects.create(equipment_model=fm.equipment_model, name="Check belt tension")
    asset = f.AssetFactory(site=site, equipment_model=fm.equipment_model, device=f"cmp-{tag}")
    pump = f.AssetFactory(site=site, equipment_model=fm.equipment_model, device=f"pmp-{tag}")
    contract = f.ContractFactory(account=account, start=(now - dt.timedelta(days=100)).date(),
                                 end=(now + dt.timedelta(days=265)).date())
    contract.assets.add(asset)
    engineer = f.EngineerFactory(name=f"Engineer {region}", region=region, warehouse=wh)
    contact = f.ContactFactory(account=account, name=f"Buyer {tag}", offer_consent=True,
                               consent_given_at=now - dt.timedelta(days=30),
                               consent_method="web_form")
    for device in (f"cmp-{tag}", f"pmp-{tag}"):
        f.store_device(device)
    covered = alert_ingest(event=f.alert_event(f"cmp-{tag}", at=now), now=now)
    uncovered = alert_ingest(event=f.alert_event(f"pmp-{tag}", at=now), now=now)
    assert covered.work_order_id is not None, covered
    assert uncovered.offer_id is not None, uncovered
    offer = offer_send(offer=m.Offer.objects.get(pk=uncovered.offer_id), actor=None, now=now)
    return Side(
        account=account, asset=asset, pump=pump, engineer=engineer, contact=contact,
        episode=m.Episode.objects.get(pk=covered.episode_id),
        alert=m.Alert.objects.get(pk=covered.alert_id),
        ticket=m.Ticket.objects.get(pk=covered.ticket_id),
        work_order=m.WorkOrder.objects.get(pk=covered.work_order_id), offer=offer,
    )


@pytest.fixture
def world(db: None) -> World:
    now = timezone.now().replace(microsecond=0)
    part = f.SparePartFactory(sku="BRG-6205", name="Bearing 6205", price=Decimal("84.50"))
    wh = f.WarehouseFactory()
    m.Stock.objects.create(part=part, warehouse=wh, quantity=5)
    north = _side("Nordwerk Foods GmbH", "north", "n1", part=part, wh=wh, now=now)
    south = _side("Südhof Logistik AG", "south", "s1", part=part, wh=wh, now=now)
    return World(north=north, south=south, part=part, warehouse=wh, now=now)


@pytest.fixture
def desk_agent(world: World) -> Any:
    user = _user("desk")
    assign_role(user=user, role=Role.DESK_AGENT)
    return f.fresh(user)


@pytest.fixture
def service_manager(world: World) -> Any:
    user = _user("manager")
    assign_role(user=user, role=Role.SERVICE_MANAGER)
    return f.fresh(user)


@pytest.fixture
def field_engineer(world: World) -> Any:
    """Jana, the north engineer: her own work orders, sites in region north."""
    user = _user("jana")
    m.Engineer.objects.filter(pk=world.north.engineer.pk).update(user=user)
    return f.fresh(user)


@pytest.fixture
def other_region_engineer(world: World) -> Any:
    user = _user("sven")
    m.Engineer.objects.filter(pk=world.south.engineer.pk).update(user=user)
    return f.fresh(user)


@pytest.fixture
def customer_user(world: World) -> Any:
    """The Nordwerk buyer's portal login."""
    user = _user("nordwerk")
    m.Contact.objects.filter(pk=world.north.contact.pk).update(user=user)
    return f.fresh(user)


@pytest.fixture
def other_customer_user(world: World) -> Any:
    user = _user("suedhof")
    m.Contact.objects.filter(pk=world.south.contact.pk).update(user=user)
    return f.fresh(user)


@pytest.fixture
def api() -> Any:
    """An API client that authenticates with a user's token, as integrations do."""

    def as_user(user: Any) -> APIClient:
        client = APIClient()
        issued = api_token_create(user=user, name="tests")
        client.credentials(HTTP_AUTHORIZATION=f"Token {issued.key}")
        return client

    return as_user


@pytest.fixture
def browser_client() -> Any:
    """A Django test client logged in as a user (session auth, CSRF enforced)."""

    def as_user(user: Any) -> Client:
        client = Client(enforce_csrf_checks=False)
        client.force_login(user)
        return client

    return as_user


# --- real Chromium (browser tests) ---------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless, driven by Playwright (skipped where it is missing)."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop on this thread; the ORM calls the tests make
    # between page actions are still plain synchronous code.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def live_world(transactional_db: None, world: World) -> Iterator[World]:
    """The world, committed so the live server's thread sees it; the store's device rows
    (not Django-managed, so not flushed) are removed afterwards."""
    yield world
    with connection.cursor() as cur:
        cur.execute("DELETE FROM telemetry_1h")
        cur.execute("DELETE FROM devices WHERE device_key IN "
                    "('cmp-n1', 'pmp-n1', 'cmp-s1', 'pmp-s1')")


def browser_login(page: Any, base: str, username: str) -> None:
    """Log a persona in through the login form."""
    page.goto(f"{base}/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
