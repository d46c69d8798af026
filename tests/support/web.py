"""The web tests' world and browser helpers.

Nordwerk Foods (region north) and Südhof Logistik (region south) each have a monitored
compressor under contract and an uncovered pump. One alert per asset goes through the real
alert service, which opens episodes, tickets, proposed work orders and draft offers; the
offers are then sent through the real offer service. Every persona belongs to one side, so
each test can ask for the other side's object and expect a 404.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.utils import timezone

from service_crm import models as m
from service_crm.models.choices import Outcome
from service_crm.services.alerts import alert_ingest
from service_crm.services.offers import offer_send
from service_crm.services.work_orders import (
    PartUsed,
    work_order_complete,
    work_order_schedule,
    work_order_start,
)
from tests import factories as f
from tests.support.personas import PASSWORD


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


# The store's device rows of the world (not Django-managed, so not flushed with the CRM).
WORLD_DEVICES = ("cmp-n1", "pmp-n1", "cmp-s1", "pmp-s1")


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


def build_world() -> World:
    now = timezone.now().replace(microsecond=0)
    part = f.SparePartFactory(sku="BRG-6205", name="Bearing 6205", price=Decimal("84.50"))
    wh = f.WarehouseFactory()
    m.Stock.objects.create(part=part, warehouse=wh, quantity=5)
    north = _side("Nordwerk Foods GmbH", "north", "n1", part=part, wh=wh, now=now)
    south = _side("Südhof Logistik AG", "south", "s1", part=part, wh=wh, now=now)
    return World(north=north, south=south, part=part, warehouse=wh, now=now)


# --- real Chromium (browser tests) ---------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def browser_login(page: Any, base: str, username: str) -> None:
    """Log a persona in through the login form."""
    page.goto(f"{base}/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")


def billable_job(world: World, *, minutes: int = 60) -> m.WorkOrder:
    """The north compressor's contract covers nothing, and its work order is done: scheduled
    one hour after the world's now, started, completed an hour later with one part and
    `minutes` of labour, so the part and the labour are billable charges."""
    m.MaintenanceContract.objects.filter(account=world.north.account).update(
        covers_parts=False, covers_labour=False)
    wo, now, hour = world.north.work_order, world.now, dt.timedelta(hours=1)
    work_order_schedule(work_order=wo, engineer=world.north.engineer, start=now + hour,
                        end=now + 3 * hour, actor=None, now=now)
    work_order_start(work_order=wo, actor=None, now=now + hour)
    work_order_complete(work_order=wo, actor=None, report="Bearing replaced",
                        time_spent_min=minutes, outcome=Outcome.FAULT_CONFIRMED,
                        now=now + 2 * hour, parts=[PartUsed(world.part, world.warehouse, 1)])
    return wo
