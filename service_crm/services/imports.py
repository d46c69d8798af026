"""CSV import of accounts, contacts, sites and assets: checked line by line, all or nothing.

One kind per file, with a header row (columns in any order, unknown columns refused):

* ``accounts``: ``name`` (required), ``vat_id``, ``industry``, ``segment``
* ``contacts``: ``account`` (the account's name), ``name``, ``email`` (required), ``phone``
  (read in the account's country unless it starts with +), ``roles`` (separated by ``;``)
* ``sites``: ``account`` (the account's name), ``name``, ``region`` (required), ``address``,
  ``city``, ``country`` (ISO 3166), ``timezone``
* ``assets``: ``serial``, ``account``, ``site`` (the site's name at that account),
  ``equipment_model`` (its name), ``install_date`` (YYYY-MM-DD) (required), ``warranty_end``,
  ``status``, ``parent`` (the serial of the line or unit the asset belongs to: another row of
  the file, in any order, or an asset already stored; blank for none)

A row whose key exists (account name, email at its account, site name at its account, asset
serial) updates that
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

from service_crm.master_data import normalise_email, normalise_name
from service_crm.models import Account, Asset, Contact, EquipmentModel, Site
from service_crm.selectors.access import Role, has_role
from service_crm.services.audit import audit_record, snapshot

IMPORT_ROLES = frozenset({Role.ADMIN, Role.DESK_AGENT, Role.SERVICE_MANAGER})
MAX_ROWS = 10_000
COLUMNS: dict[str, tuple[frozenset[str], frozenset[str]]] = {  # kind: (required, optional)
    "accounts": (frozenset({"name"}), frozenset({"vat_id", "industry", "segment"})),
    "contacts": (frozenset({"account", "name", "email"}), frozenset({"phone", "roles"})),
    "sites": (frozenset({"account", "name", "region"}),
              frozenset({"address", "city", "country", "timezone"})),
    "assets": (frozenset({"serial", "account", "site", "equipment_model", "install_date"}),
               frozenset({"warranty_end", "status", "parent"})),
}

KEY_COLUMN = {"accounts": "name", "contacts": "email", "sites": "name", "assets": "serial"}


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
    # Assets given a different parent: (line, serial, parent serial or "" for none).
    parents: list[tuple[int, str, str]] = field(default_factory=list)

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
        for col in ("vat_id", "industry", "segment"):
            if row.get(col):
                setattr(obj, col, row[col])
        return obj
    if kind == "contacts":
        account = _account(row["account"])
        email = normalise_email(row["email"])
        contact = (Contact.objects.filter(account=account, email__iexact=email).first()
                   or Contact(account=account, email=email))
        contact.name = row["name"]
        if "phone" in row:
            contact.phone = row["phone"]
        if "roles" in row:
            contact.roles = sorted({r.strip() for r in row["roles"].split(";") if r.strip()})
        return contact
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
    if "parent" in row:  # settled once every row is stored (_settle_parents)
        asset.parent = None
    return asset


def _key(kind: str, row: dict[str, str]) -> tuple[str, ...]:
    if kind == "accounts":
        return (normalise_name(row.get("name", "")).casefold(),)
    if kind == "sites":
        return (normalise_name(row.get("account", "")).casefold(),
                normalise_name(row.get("name", "")).casefold())
    if kind == "contacts":
        return (normalise_name(row.get("account", "")).casefold(),
                normalise_email(row.get("email", "")))
    return (row.get("serial", "").strip(),)


def _count(report: ImportReport, *, actor: Any, kind: str, obj: models.Model,
           before: dict[str, Any] | None, now: dt.datetime) -> None:
    """Count and audit one stored row (created or updated)."""
    audit_record(actor=actor, action=f"import.{kind}", obj=obj, before=before, at=now)
    if before is None:
        report.created += 1
    else:
        report.updated += 1


@dataclass
class _PendingParent:
    line: int
    asset: Asset
    parent_serial: str  # "" for none
    before: dict[str, Any] | None


def _settle_parents(pending: list[_PendingParent], *, seen: dict[tuple[str, ...], int],
                    report: ImportReport, actor: Any, now: dt.datetime) -> None:
    """Give the asset rows their parents once every row of the file is stored, so a machine
    may come before its line. The hierarchy is checked as it will be after the import (the
    file's parents over the stored ones): an unknown serial, a parent on another account and
    a cycle are each reported on the line that names the parent."""
    in_file = {p.asset.serial: p.asset for p in pending}
    wanted = {p.parent_serial for p in pending if p.parent_serial} - set(in_file)
    stored = {a.serial: a for a in Asset.objects.filter(serial__in=wanted).select_related("site")}
    final: dict[int, int | None] = {}  # asset pk -> its parent's pk after the import
    resolved: list[tuple[_PendingParent, Asset | None]] = []
    for p in pending:
        parent = in_file.get(p.parent_serial) or stored.get(p.parent_serial)
        if p.parent_serial and parent is None:
            where = seen.get((p.parent_serial,))
            report.errors.append(RowError(p.line, "parent", (
                f"Parent {p.parent_serial!r} is on line {where}, which was refused."
                if where else f"No asset with serial {p.parent_serial!r} in this file or "
                "stored.")))
            continue
        final[p.asset.pk] = parent.pk if parent is not None else None
        resolved.append((p, parent))
    stored_parent: dict[int, int | None] = {}

    def parent_of(pk: int) -> int | None:
        if pk in final:
            return final[pk]
        if pk not in stored_parent:
            stored_parent[pk] = Asset.objects.filter(pk=pk).values_list(
                "parent_id", flat=True).first()
        return stored_parent[pk]

    for p, parent in resolved:
        asset = p.asset
        problem = ""
        if parent is not None:
            if parent.pk == asset.pk:
                problem = "An asset cannot be its own parent."
            elif parent.site.account_id != asset.site.account_id:
                problem = (f"Parent {parent.serial!r} belongs to another account "
                           f"({parent.site.account.name}).")
            else:
                current: int | None = parent.pk
                visited: set[int] = set()
                while current is not None and current not in visited:
                    if current == asset.pk:
                        problem = f"Parent {parent.serial!r} would make a cycle."
                        break
                    visited.add(current)
                    current = parent_of(current)
        if problem:
            report.errors.append(RowError(p.line, "parent", problem))
            continue
        asset.parent = parent
        asset.save(update_fields=["parent"])  # the first pass stored it without one
        if p.before is None or p.before.get("parent") != asset.parent_id:
            report.parents.append((p.line, asset.serial, parent.serial if parent else ""))
        if p.before is not None and p.before == snapshot(asset):
            report.unchanged += 1
            continue
        _count(report, actor=actor, kind="assets", obj=asset, before=p.before, now=now)


@transaction.atomic(durable=True)
def master_data_import(*, kind: str, text: str, actor: Any, dry_run: bool = False,
                       now: dt.datetime | None = None) -> ImportReport:
    """Import one CSV of ``kind`` (see the module doc); returns what was (or would be) done
    and every problem by line and column. Nothing is stored on a dry run or any problem."""
    now = now or timezone.now()
    if not has_role(user=actor, roles=IMPORT_ROLES):
        raise ValidationError({"actor": "Only the service desk imports master data."})
    if kind not in COLUMNS:
        raise ValidationError({"kind": f"Import accounts, contacts, sites or assets, not "
                                       f"{kind!r}."})
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
    parents: list[_PendingParent] = []  # asset rows naming a parent: settled after all rows
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
            # The stored row, not `obj`: _build has already given it the file's values.
            before = snapshot(type(obj)._default_manager.get(pk=obj.pk)) if obj.pk else None
            obj.full_clean()
        except _RowRefused as exc:
            report.errors.append(RowError(line, exc.column, exc.message))
            continue
        except ValidationError as exc:
            for col, messages in exc.message_dict.items():
                for message in messages:
                    report.errors.append(RowError(line, col, message))
            continue
        pending = "parent" in row and isinstance(obj, Asset)
        if before is not None and before == snapshot(obj) and not pending:
            report.unchanged += 1
            continue
        try:
            with transaction.atomic():  # a database refusal stays this row's problem
                obj.save()
        except IntegrityError as exc:
            report.errors.append(RowError(line, "", f"Refused by the database: {exc}"[:300]))
            continue
        if pending and isinstance(obj, Asset):  # counted and audited once its parent is settled
            parents.append(_PendingParent(line, obj, row["parent"], before))
            continue
        _count(report, actor=actor, kind=kind, obj=obj, before=before, now=now)
    if parents:
        _settle_parents(parents, seen=seen, report=report, actor=actor, now=now)
    if report.errors or dry_run:
        transaction.set_rollback(True)  # all or nothing; a dry run stores nothing
    return report
