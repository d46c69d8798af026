"""CSV import of accounts, sites and assets: checked line by line, all or nothing.

One kind per file, with a header row (columns in any order, unknown columns refused):

* ``accounts``: ``name`` (required), ``industry``, ``segment``
* ``sites``: ``account`` (the account's name), ``name``, ``region`` (required), ``address``,
  ``city``, ``country`` (ISO 3166), ``timezone``
* ``assets``: ``serial``, ``account``, ``site`` (the site's name at that account),
  ``equipment_model`` (its name), ``install_date`` (YYYY-MM-DD) (required), ``warranty_end``,
  ``status``

A row whose key exists (account name, site name at its account, asset serial) updates that
record, otherwise one is created; importing the same file twice changes nothing the second
time. Every line is checked, each problem reported with its line number and column; if there
is any, nothing is stored. A dry run checks and counts without storing."""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction
from django.utils import timezone

from service_crm.master_data import normalise_name
from service_crm.models import Account, Asset, EquipmentModel, Site
from service_crm.selectors.access import Role, has_role
from service_crm.services.audit import audit_record, snapshot

IMPORT_ROLES = frozenset({Role.ADMIN, Role.DESK_AGENT, Role.SERVICE_MANAGER})
MAX_ROWS = 10_000
COLUMNS: dict[str, tuple[frozenset[str], frozenset[str]]] = {  # kind: (required, optional)
    "accounts": (frozenset({"name"}), frozenset({"industry", "segment"})),
    "sites": (frozenset({"account", "name", "region"}),
              frozenset({"address", "city", "country", "timezone"})),
    "assets": (frozenset({"serial", "account", "site", "equipment_model", "install_date"}),
               frozenset({"warranty_end", "status"})),
}

KEY_COLUMN = {"accounts": "name", "sites": "name", "assets": "serial"}


@dataclass(frozen=True)
class RowError:
    line: int
    column: str
    message: str


@dataclass
class ImportReport:
    kind: str
    dry_run: bool
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[RowError] = field(default_factory=list)

    @property
    def stored(self) -> bool:
        return not self.dry_run and not self.errors


class _RowRefused(Exception):
    def __init__(self, column: str, message: str) -> None:
        super().__init__(message)
        self.column, self.message = column, message


def _date(value: str, column: str) -> dt.date | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise _RowRefused(column, f"{value!r} is not a date (YYYY-MM-DD).") from None


def _account(name: str) -> Account:
    account = Account.objects.filter(name__iexact=normalise_name(name)).first()
    if account is None:
        raise _RowRefused("account", f"No account named {name!r}.")
    return account


def _build(kind: str, row: dict[str, str]) -> models.Model:
    """The record a row describes: the existing one (by its key) with the row's values, or a
    new one. Raises _RowRefused naming the column."""
    if kind == "accounts":
        name = normalise_name(row["name"])
        obj = Account.objects.filter(name__iexact=name).first() or Account(name=name)
        obj.name = name
        for col in ("industry", "segment"):
            if row.get(col):
                setattr(obj, col, row[col])
        return obj
    if kind == "sites":
        account = _account(row["account"])
        name = normalise_name(row["name"])
        site = (Site.objects.filter(account=account, name__iexact=name).first()
                or Site(account=account, name=name))
        site.region = row["region"]
        for col in ("address", "city", "country", "timezone"):
            if row.get(col):
                setattr(site, col, row[col])
        return site
    account = _account(row["account"])
    site_obj = Site.objects.filter(account=account,
                                   name__iexact=normalise_name(row["site"])).first()
    if site_obj is None:
        raise _RowRefused("site", f"No site named {row['site']!r} at {account.name}.")
    model = EquipmentModel.objects.filter(name__iexact=row["equipment_model"].strip()).first()
    if model is None:
        raise _RowRefused("equipment_model",
                          f"No equipment model named {row['equipment_model']!r}.")
    serial = row["serial"].strip()
    asset = Asset.objects.filter(serial=serial).first() or Asset(serial=serial)
    asset.site, asset.equipment_model = site_obj, model
    asset.install_date = _date(row["install_date"], "install_date")  # type: ignore[assignment]
    if "warranty_end" in row:
        asset.warranty_end = _date(row["warranty_end"], "warranty_end")
    if row.get("status"):
        asset.status = row["status"]
    return asset


def _key(kind: str, row: dict[str, str]) -> tuple[str, ...]:
    if kind == "accounts":
        return (normalise_name(row.get("name", "")).casefold(),)
    if kind == "sites":
        return (normalise_name(row.get("account", "")).casefold(),
                normalise_name(row.get("name", "")).casefold())
    return (row.get("serial", "").strip(),)


@transaction.atomic(durable=True)
def master_data_import(*, kind: str, text: str, actor: Any, dry_run: bool = False,
                       now: dt.datetime | None = None) -> ImportReport:
    """Import one CSV of ``kind`` (see the module doc); returns what was (or would be) done
    and every problem by line and column. Nothing is stored on a dry run or any problem."""
    now = now or timezone.now()
    if not has_role(user=actor, roles=IMPORT_ROLES):
        raise ValidationError({"actor": "Only the service desk imports master data."})
    if kind not in COLUMNS:
        raise ValidationError({"kind": f"Import accounts, sites or assets, not {kind!r}."})
    report = ImportReport(kind=kind, dry_run=dry_run)
    # newline="": the csv module reads line ends itself (quoted fields may hold them).
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff"), newline=""))
    try:
        return _import_rows(kind=kind, reader=reader, report=report, actor=actor,
                            dry_run=dry_run, now=now)
    except csv.Error as exc:  # not CSV at all: say where it broke, store nothing
        report.errors.append(RowError(reader.line_num, "", f"Not a CSV file: {exc}"))
        transaction.set_rollback(True)
        return report


def _import_rows(*, kind: str, reader: csv.DictReader[str], report: ImportReport,
                 actor: Any, dry_run: bool, now: dt.datetime) -> ImportReport:
    required, optional = COLUMNS[kind]
    header = {(h or "").strip() for h in (reader.fieldnames or [])}
    missing, unknown = required - header, header - required - optional
    if missing or unknown:
        if missing:
            report.errors.append(RowError(1, ", ".join(sorted(missing)),
                                          "Missing column(s): " + ", ".join(sorted(missing))))
        if unknown:
            report.errors.append(RowError(1, ", ".join(sorted(unknown)),
                                          "Unknown column(s): " + ", ".join(sorted(unknown))
                                          + "; expected " + ", ".join(sorted(required | optional))))
        return report
    seen: dict[tuple[str, ...], int] = {}
    for raw in reader:
        line = reader.line_num
        report.rows += 1
        if report.rows > MAX_ROWS:
            report.errors.append(RowError(line, "", f"At most {MAX_ROWS} rows per file."))
            break
        row = {(k or "").strip(): (v or "").strip() for k, v in raw.items()
               if not isinstance(v, list)}
        if None in raw:
            report.errors.append(RowError(line, "", "More values than columns."))
            continue
        blank = sorted(c for c in required if not row.get(c))
        if blank:
            for c in blank:
                report.errors.append(RowError(line, c, "This column needs a value."))
            continue
        key = _key(kind, row)
        if key in seen:
            report.errors.append(RowError(line, KEY_COLUMN[kind],
                                          f"Same record as line {seen[key]}."))
            continue
        seen[key] = line
        try:
            obj = _build(kind, row)
            before = snapshot(obj) if obj.pk else None
            obj.full_clean()
        except _RowRefused as exc:
            report.errors.append(RowError(line, exc.column, exc.message))
            continue
        except ValidationError as exc:
            for col, messages in exc.message_dict.items():
                for message in messages:
                    report.errors.append(RowError(line, col, message))
            continue
        if before is not None and before == snapshot(obj):
            report.unchanged += 1
            continue
        try:
            with transaction.atomic():  # a database refusal stays this row's problem
                obj.save()
        except IntegrityError as exc:
            report.errors.append(RowError(line, "", f"Refused by the database: {exc}"[:300]))
            continue
        audit_record(actor=actor, action=f"import.{kind}", obj=obj, before=before, at=now)
        if before is None:
            report.created += 1
        else:
            report.updated += 1
    if report.errors or dry_run:
        transaction.set_rollback(True)  # all or nothing; a dry run stores nothing
    return report
