"""The audit trail and the account timeline: written by every service that changes things."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, models
from django.db.models.fields.files import FieldFile
from django.forms.models import model_to_dict

from service_crm.models import Account, Asset, AuditLog, Contact, Interaction, Ticket
from service_crm.models.choices import InteractionKind

AUTOMATION = "automation"
# Never copied into the audit log: hashes of passwords and keys stay in their own rows.
SECRET_FIELDS = frozenset({"password", "key_hash", "password_fingerprint", "secret"})


@dataclass
class _Pending:
    """Audit and timeline rows recorded inside :func:`records_batched`, not yet written."""

    audit: list[AuditLog] = field(default_factory=list)
    timeline: list[Interaction] = field(default_factory=list)


_pending: ContextVar[_Pending | None] = ContextVar("audit_pending", default=None)


@contextmanager
def records_batched() -> Iterator[None]:
    """Write the audit and timeline rows recorded in the block with one INSERT per table when
    the block ends, instead of one each (the alert automation records six per new alert).

    Each row is built when it is recorded (so an audit entry's ``after`` is the object as it
    was then) and the rows of a table are inserted in the order they were recorded, so their
    ids and the timeline's order (``-at, -pk``) are what writing them one by one would give.
    The block must run inside the transaction of the change and must not roll back a savepoint
    after recording a row (the row would survive it); if the block raises, nothing is written
    (the transaction is rolling back). Nested blocks write with the outermost one. Rows are not
    visible to queries in the block, and a recorded row has no ``pk`` until the block ends."""
    if _pending.get() is not None:
        yield
        return
    if not connection.in_atomic_block:
        raise RuntimeError("records_batched must run inside the transaction of the change")
    pending = _Pending()
    token = _pending.set(pending)
    try:
        yield
    finally:
        _pending.reset(token)
    # Reached only when the block did not raise.
    if pending.audit:
        AuditLog.objects.bulk_create(pending.audit)
    if pending.timeline:
        Interaction.objects.bulk_create(pending.timeline)


def _write(entry: AuditLog | Interaction, table: str) -> None:
    """Insert `entry` now, or keep it for the enclosing :func:`records_batched` block."""
    pending = _pending.get()
    if pending is None:
        entry.save(force_insert=True)
    else:
        getattr(pending, table).append(entry)


def snapshot(obj: models.Model | None) -> dict[str, Any] | None:
    """The row's field values as JSON-safe data (for before/after in the audit log)."""
    if obj is None:
        return None
    data = model_to_dict(obj, exclude=[f.name for f in obj._meta.many_to_many])
    data = {k: v for k, v in data.items() if k not in SECRET_FIELDS}
    # A stored file is recorded by its storage name (the bytes stay where they are).
    data = {k: (v.name if isinstance(v, FieldFile) else v) for k, v in data.items()}
    result: dict[str, Any] = json.loads(json.dumps(data, cls=DjangoJSONEncoder))
    return result


def audit_record(
    *,
    actor: AbstractBaseUser | None,
    action: str,
    obj: models.Model,
    before: dict[str, Any] | None,
    at: dt.datetime,
    deleting: bool = False,
) -> AuditLog:
    """Append one audit entry; ``after`` is taken from ``obj`` as it is now.

    For a deletion, call it just before ``obj.delete()`` with ``deleting=True``: the entry is
    filed under the row that goes, with its values in ``before`` and no ``after``."""
    if deleting:
        before = snapshot(obj)
    entry = AuditLog(
        at=at,
        actor_id=None if actor is None else actor.pk,
        actor_label=AUTOMATION if actor is None else actor.get_username(),
        action=action,
        object_type=obj._meta.model_name or type(obj).__name__,
        object_id=str(obj.pk),
        before=before,
        after=None if deleting else snapshot(obj),
    )
    _write(entry, "audit")
    return entry


def interaction_record(
    *,
    account: Account,
    summary: str,
    at: dt.datetime,
    kind: str = InteractionKind.AUTOMATION,
    body: str = "",
    asset: Asset | None = None,
    ticket: Ticket | None = None,
    contact: Contact | None = None,
    by: AbstractBaseUser | None = None,
) -> Interaction:
    """Add an entry to the account timeline."""
    entry = Interaction(
        account=account, asset=asset, ticket=ticket, contact=contact, kind=kind,
        summary=summary[:300], body=body, at=at, by_id=None if by is None else by.pk,
    )
    _write(entry, "timeline")
    return entry
