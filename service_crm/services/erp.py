"""What the ERP posts to us: part and labour prices for the price list, and stock levels.

Both are idempotent upserts of a whole batch: every row is checked first and the batch is
refused as a whole (nothing written) when any row is wrong, with the errors keyed by row and
field (``prices[3].sku``); posting the same batch again changes nothing. Each row that changes
is audited under the integration user."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from service_crm.models import PriceListEntry, SparePart, Stock, Warehouse
from service_crm.models.choices import ChargeKind
from service_crm.selectors.access import Role, has_role
from service_crm.services.audit import audit_record, snapshot

# Who may post prices and stock: administrators and service managers (an ERP integration
# user is given the service-manager role and a token of its own).
ERP_ROLES = frozenset({Role.ADMIN, Role.SERVICE_MANAGER})
MAX_ROWS = 5000


@dataclass(frozen=True)
class PriceRow:
    kind: str  # ChargeKind: part or labour
    sku: str | None
    currency: str
    unit_price: Decimal
    valid_from: dt.date
    valid_until: dt.date | None = None


@dataclass(frozen=True)
class StockRow:
    sku: str
    warehouse: str
    quantity: int


@dataclass(frozen=True)
class UpsertReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0


def _check_actor(actor: Any) -> None:
    if not has_role(user=actor, roles=ERP_ROLES):
        raise ValidationError({"actor": "Only an administrator or a service manager (the ERP "
                                        "integration) posts prices and stock."})


def _check_size(rows: Sequence[object], name: str) -> None:
    if not rows:
        raise ValidationError({name: "Send at least one row."})
    if len(rows) > MAX_ROWS:
        raise ValidationError({name: f"At most {MAX_ROWS} rows per request."})


def _serialise(name: str) -> None:
    """One batch of a kind at a time (a transaction-scoped advisory lock): two ERP posts that
    both create the same new row would otherwise race on the unique key."""
    with connection.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"aftercare.erp.{name}"])


def _parts_by_sku(skus: set[str]) -> dict[str, SparePart]:
    return {p.sku: p for p in SparePart.objects.filter(sku__in=skus)}


@transaction.atomic(durable=True)
def prices_upsert(*, rows: Sequence[PriceRow], actor: Any,
                  now: dt.datetime | None = None) -> UpsertReport:
    """Create or update price list entries, keyed by (part or labour, currency, valid_from)."""
    now = now or timezone.now()
    _check_actor(actor)
    _check_size(rows, "prices")
    _serialise("prices")
    parts = _parts_by_sku({r.sku for r in rows if r.sku})
    errors: dict[str, str] = {}
    seen: dict[tuple[str, str | None, str, dt.date], int] = {}
    for i, r in enumerate(rows):
        at = f"prices[{i}]"
        if r.kind == ChargeKind.PART and not r.sku:
            errors[f"{at}.sku"] = "A part price needs the part's SKU."
        elif r.kind == ChargeKind.PART and r.sku not in parts:
            errors[f"{at}.sku"] = f"No part with SKU {r.sku!r} in the catalogue."
        elif r.kind == ChargeKind.LABOUR and r.sku:
            errors[f"{at}.sku"] = "A labour price has no SKU."
        if r.valid_until is not None and r.valid_until < r.valid_from:
            errors[f"{at}.valid_until"] = "The price must end on or after valid_from."
        key = (r.kind, r.sku if r.kind == ChargeKind.PART else None, r.currency, r.valid_from)
        if key in seen:
            errors[f"{at}.valid_from"] = (f"Same part, currency and valid_from as "
                                          f"prices[{seen[key]}].")
        seen.setdefault(key, i)
    if errors:
        raise ValidationError(errors)
    created = updated = unchanged = 0
    for r in rows:
        part = parts[r.sku] if r.kind == ChargeKind.PART and r.sku else None
        entry = (PriceListEntry.objects.select_for_update(of=("self",))
                 .filter(kind=r.kind, part=part, currency=r.currency, valid_from=r.valid_from)
                 .order_by("pk").first())
        if entry is None:
            entry = PriceListEntry(kind=r.kind, part=part, currency=r.currency,
                                   valid_from=r.valid_from)
            before = None
        elif (entry.unit_price, entry.valid_until) == (r.unit_price, r.valid_until):
            unchanged += 1
            continue
        else:
            before = snapshot(entry)
        entry.unit_price, entry.valid_until, entry.updated_at = (r.unit_price, r.valid_until,
                                                                 now)
        entry.full_clean(validate_unique=False, validate_constraints=False)
        entry.save()
        audit_record(actor=actor, action="price.upsert", obj=entry, before=before, at=now)
        if before is None:
            created += 1
        else:
            updated += 1
    return UpsertReport(created=created, updated=updated, unchanged=unchanged)


@transaction.atomic(durable=True)
def stock_upsert(*, rows: Sequence[StockRow], actor: Any,
                 now: dt.datetime | None = None) -> UpsertReport:
    """Set the stock of parts in warehouses to the ERP's counts (absolute quantities)."""
    now = now or timezone.now()
    _check_actor(actor)
    _check_size(rows, "stock")
    _serialise("stock")
    parts = _parts_by_sku({r.sku for r in rows})
    warehouses = {w.code: w for w in Warehouse.objects.filter(
        code__in={r.warehouse for r in rows})}
    errors: dict[str, str] = {}
    seen: dict[tuple[str, str], int] = {}
    for i, r in enumerate(rows):
        at = f"stock[{i}]"
        if r.sku not in parts:
            errors[f"{at}.sku"] = f"No part with SKU {r.sku!r} in the catalogue."
        if r.warehouse not in warehouses:
            errors[f"{at}.warehouse"] = f"No warehouse with code {r.warehouse!r}."
        if r.quantity < 0:
            errors[f"{at}.quantity"] = "A stock level cannot be negative."
        if (r.sku, r.warehouse) in seen:
            errors[f"{at}.sku"] = (f"Same part and warehouse as "
                                   f"stock[{seen[(r.sku, r.warehouse)]}].")
        seen.setdefault((r.sku, r.warehouse), i)
    if errors:
        raise ValidationError(errors)
    created = updated = unchanged = 0
    for r in rows:
        part, wh = parts[r.sku], warehouses[r.warehouse]
        stock = (Stock.objects.select_for_update(of=("self",))
                 .filter(part=part, warehouse=wh).order_by("pk").first())
        if stock is not None and stock.quantity == r.quantity:
            unchanged += 1
            continue
        before = snapshot(stock)
        if stock is None:
            stock = Stock(part=part, warehouse=wh)
        stock.quantity = r.quantity
        stock.save()
        audit_record(actor=actor, action="stock.upsert", obj=stock, before=before, at=now)
        if before is None:
            created += 1
        else:
            updated += 1
    return UpsertReport(created=created, updated=updated, unchanged=unchanged)
