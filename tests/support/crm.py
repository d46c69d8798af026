"""The service CRM tests' world: one customer with a monitored compressor, alert events as
the anomaly worker publishes them, and running calls at once."""

from __future__ import annotations

import datetime as dt
import itertools
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import connection

from aftercare.events import AlertEvent, Evidence
from service_crm import models as m
from tests import factories as f

# Monday 23 Nov 2026, 09:00 UTC = 10:00 in Berlin: inside office hours.
NOW = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)
_ids = itertools.count(1)


def race(calls: Sequence[Callable[[], Any]]) -> list[Any]:
    """Run every call at once, each in its own thread with its own database connection
    (released together by a barrier); return each call's result or the exception it raised,
    in the calls' order."""
    barrier = threading.Barrier(len(calls))
    outcomes: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        try:
            barrier.wait()
            outcomes[i] = calls[i]()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller as the outcome
            outcomes[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes


def make_event(device: str = "cmp-0001", *, alert_id: str | None = None, revision: int = 1,
               state: str = "open", severity: str = "warning",
               failure_mode: str = "bearing_wear", at: dt.datetime = NOW,
               detector: str = "zscore") -> AlertEvent:
    return AlertEvent(
        alert_id=alert_id or f"a-{next(_ids)}", revision=revision, state=state,  # type: ignore[arg-type]
        device=device, kind="equipment", severity=severity,  # type: ignore[arg-type]
        failure_mode=failure_mode, score=0.9, opened_at=at, at=at,
        evidence=(Evidence(metric="vibration_rms_mm_s", detector=detector, score=0.9,
                           value=7.1, baseline=2.8),),
        detectors={detector: 0.9},
    )


@dataclass
class World:
    account: m.Account
    site: m.Site
    asset: m.Asset
    failure_mode: m.FailureMode
    part: m.SparePart
    warehouse: m.Warehouse
    engineer: m.Engineer
    technical: m.Contact
    buyer: m.Contact

    def cover_by_contract(self, **kw: Any) -> m.MaintenanceContract:
        contract = f.ContractFactory(account=self.account, **kw)
        contract.assets.add(self.asset)
        return contract


def build_world() -> World:
    """Nordwerk Foods, plant in Hamburg (region north), compressor cmp-0001 out of warranty."""
    account = f.AccountFactory(name="Nordwerk Foods GmbH")
    site = f.SiteFactory(account=account, name="Hamburg plant", region="north")
    fm = f.FailureModeFactory()
    asset = f.AssetFactory(site=site, equipment_model=fm.equipment_model, device="cmp-0001")
    part = f.SparePartFactory(sku="BRG-6205", name="Bearing 6205", price=Decimal("84.50"))
    m.BomLine.objects.create(failure_mode=fm, part=part, quantity=2)
    wh = f.WarehouseFactory()
    m.Stock.objects.create(part=part, warehouse=wh, quantity=5)
    m.ServiceTask.objects.create(equipment_model=fm.equipment_model, name="Check belt tension")
    engineer = f.EngineerFactory(name="Jana Petersen", region="north", warehouse=wh)
    technical = f.ContactFactory(account=account, name="Tom Technik", roles=["technical"])
    buyer = f.ContactFactory(account=account, name="Petra Einkauf", roles=["procurement"],
                             offer_consent=True, consent_given_at=NOW - dt.timedelta(days=100),
                             consent_method="web_form")
    return World(account, site, asset, fm, part, wh, engineer, technical, buyer)
