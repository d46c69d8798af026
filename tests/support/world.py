"""The tests' one world: who the customers are, what they own, and how far their story has got.

Every test tree builds it here, the same way. The catalogue is one bearing (BRG-6205 at
84.50) with five in stock in one warehouse. A customer is an account with one plant, a
compressor whose model's bearing-wear failure takes two bearings and has a service task, the
region's engineer, a technical contact and a buyer who agreed to offers. The customers:

- north: Nordwerk Foods GmbH, Hamburg plant, compressor cmp-n1, engineer Jana Petersen,
  Tom Technik (technical) and Petra Einkauf (procurement);
- south: Südhof Logistik AG, Munich plant, compressor cmp-s1, engineer Sven Richter,
  Uwe Technik (technical) and Sabine Kauf (procurement).

The world comes in two states of the same story:

- :func:`build_world` (the service CRM's tests): Nordwerk Foods alone at :data:`NOW`, before
  anything has happened: its compressor out of warranty, under no contract, no alert yet;
- :func:`build_served_world` (the web's tests): both customers, at the real time (the pages
  show "today"), after a first alert each: every compressor under a contract and an uncovered
  pump beside it, one alert per asset put through the real alert service (episode, ticket,
  proposed work order; a draft offer for the pump, then sent). Every persona belongs to one
  side, so each test can ask for the other side's object and expect a 404.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.utils import timezone

from service_crm import models as m
from service_crm.services.alerts import alert_ingest
from service_crm.services.offers import offer_send
from tests import factories as f

# Monday 23 Nov 2026, 09:00 UTC = 10:00 in Berlin: inside office hours.
NOW = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)

# The store's device rows of the served world (not Django-managed, so not flushed with the CRM).
WORLD_DEVICES = ("cmp-n1", "pmp-n1", "cmp-s1", "pmp-s1")


@dataclass(frozen=True)
class _Persona:
    account: str
    region: str
    tag: str
    site: str
    engineer: str
    technical: str
    buyer: str


_NORTH = _Persona("Nordwerk Foods GmbH", "north", "n1", "Hamburg plant", "Jana Petersen",
                  "Tom Technik", "Petra Einkauf")
_SOUTH = _Persona("Südhof Logistik AG", "south", "s1", "Munich plant", "Sven Richter",
                  "Uwe Technik", "Sabine Kauf")


@dataclass
class Customer:
    """One customer before anything has happened."""

    account: m.Account
    site: m.Site
    asset: m.Asset
    failure_mode: m.FailureMode
    engineer: m.Engineer
    technical: m.Contact
    buyer: m.Contact

    def cover_by_contract(self, **kw: Any) -> m.MaintenanceContract:
        contract = f.ContractFactory(account=self.account, **kw)
        contract.assets.add(self.asset)
        return contract


@dataclass
class Side(Customer):
    """One customer after its first alerts: what its users may see and the others may not."""

    pump: m.Asset
    contract: m.MaintenanceContract
    episode: m.Episode
    alert: m.Alert
    ticket: m.Ticket
    work_order: m.WorkOrder
    offer: m.Offer


@dataclass
class World(Customer):
    """The service CRM's world: the catalogue and Nordwerk Foods, at :data:`NOW`."""

    part: m.SparePart
    warehouse: m.Warehouse
    now: dt.datetime


@dataclass
class ServedWorld:
    """The web's world: the catalogue and both customers, served, at ``now``."""

    north: Side
    south: Side
    part: m.SparePart
    warehouse: m.Warehouse
    now: dt.datetime


def _catalogue() -> tuple[m.SparePart, m.Warehouse]:
    part = f.SparePartFactory(sku="BRG-6205", name="Bearing 6205", price=Decimal("84.50"))
    wh = f.WarehouseFactory()
    m.Stock.objects.create(part=part, warehouse=wh, quantity=5)
    return part, wh


def _customer(who: _Persona, *, part: m.SparePart, wh: m.Warehouse,
              now: dt.datetime) -> Customer:
    account = f.AccountFactory(name=who.account)
    site = f.SiteFactory(account=account, name=who.site, region=who.region)
    fm = f.FailureModeFactory()
    m.BomLine.objects.create(failure_mode=fm, part=part, quantity=2)
    m.ServiceTask.objects.create(equipment_model=fm.equipment_model, name="Check belt tension")
    asset = f.AssetFactory(site=site, equipment_model=fm.equipment_model,
                           device=f"cmp-{who.tag}")
    engineer = f.EngineerFactory(name=who.engineer, region=who.region, warehouse=wh)
    technical = f.ContactFactory(account=account, name=who.technical, roles=["technical"])
    buyer = f.ContactFactory(account=account, name=who.buyer, roles=["procurement"],
                             offer_consent=True, consent_given_at=now - dt.timedelta(days=100),
                             consent_method="web_form")
    return Customer(account, site, asset, fm, engineer, technical, buyer)


def _served(who: _Persona, *, part: m.SparePart, wh: m.Warehouse, now: dt.datetime) -> Side:
    c = _customer(who, part=part, wh=wh, now=now)
    pump = f.AssetFactory(site=c.site, equipment_model=c.failure_mode.equipment_model,
                          device=f"pmp-{who.tag}")
    contract = c.cover_by_contract(start=(now - dt.timedelta(days=100)).date(),
                                   end=(now + dt.timedelta(days=265)).date())
    for device in (f"cmp-{who.tag}", f"pmp-{who.tag}"):
        f.store_device(device)
    covered = alert_ingest(event=f.alert_event(f"cmp-{who.tag}", at=now), now=now)
    uncovered = alert_ingest(event=f.alert_event(f"pmp-{who.tag}", at=now), now=now)
    assert covered.work_order_id is not None, covered
    assert uncovered.offer_id is not None, uncovered
    offer = offer_send(offer=m.Offer.objects.get(pk=uncovered.offer_id), actor=None, now=now)
    return Side(
        c.account, c.site, c.asset, c.failure_mode, c.engineer, c.technical, c.buyer,
        pump=pump, contract=contract,
        episode=m.Episode.objects.get(pk=covered.episode_id),
        alert=m.Alert.objects.get(pk=covered.alert_id),
        ticket=m.Ticket.objects.get(pk=covered.ticket_id),
        work_order=m.WorkOrder.objects.get(pk=covered.work_order_id), offer=offer,
    )


def build_world() -> World:
    """Nordwerk Foods at :data:`NOW`, compressor cmp-n1 out of warranty, nothing happened."""
    part, wh = _catalogue()
    c = _customer(_NORTH, part=part, wh=wh, now=NOW)
    return World(c.account, c.site, c.asset, c.failure_mode, c.engineer, c.technical, c.buyer,
                 part=part, warehouse=wh, now=NOW)


def build_served_world() -> ServedWorld:
    """Nordwerk Foods and Südhof Logistik now, each after its first alerts (module docstring)."""
    now = timezone.now().replace(microsecond=0)
    part, wh = _catalogue()
    north = _served(_NORTH, part=part, wh=wh, now=now)
    south = _served(_SOUTH, part=part, wh=wh, now=now)
    return ServedWorld(north=north, south=south, part=part, warehouse=wh, now=now)
