"""Merging duplicates: one account (or contact) absorbs the other, every related row moved,
the absorbed one deleted; audited (its last values kept in the audit log) and on the
timeline."""

from __future__ import annotations

import datetime as dt
from typing import Any, TypeVar

from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.utils import timezone

from service_crm.models import Account, Contact, Invoice, Offer, Site
from service_crm.models.choices import InvoiceStatus
from service_crm.selectors.access import Role, has_role
from service_crm.services.audit import audit_record, interaction_record, snapshot

MERGE_ROLES = frozenset({Role.ADMIN, Role.DESK_AGENT, Role.SERVICE_MANAGER})
M = TypeVar("M", bound=models.Model)


def _check(actor: Any, keep: models.Model, merge: models.Model, what: str) -> None:
    if not has_role(user=actor, roles=MERGE_ROLES):
        raise ValidationError({"actor": f"Only the service desk merges {what}s."})
    if keep.pk == merge.pk:
        raise ValidationError({"merge": f"Choose two different {what}s."})


def _lock_both(model: type[M], keep: M, merge: M, what: str) -> tuple[M, M]:
    """``keep`` and ``merge`` read again under a row lock (in primary-key order, so two merges
    of the same pair cannot deadlock); refused if either is gone meanwhile."""
    locked = {o.pk: o for o in model._default_manager.select_for_update().filter(
        pk__in=[keep.pk, merge.pk]).order_by("pk")}
    if len(locked) != 2:
        raise ValidationError({"merge": f"One of the {what}s no longer exists."})
    return locked[keep.pk], locked[merge.pk]


def _move_reverse_fks(*, model: type[models.Model], keep: models.Model, merge: models.Model,
                      skip: set[str]) -> dict[str, int]:
    """Point every row that refers to ``merge`` (any model's foreign key to ``model``) at
    ``keep``; returns rows moved per related model. Found from the model's metadata, so a
    relation added later is moved too."""
    moved: dict[str, int] = {}
    for rel in model._meta.related_objects:
        related = rel.related_model
        if not (rel.one_to_many or rel.one_to_one) or isinstance(related, str) \
                or related is model:
            continue
        name = related._meta.model_name or ""
        if name in skip:
            continue
        field = rel.field.name
        n = related._base_manager.filter(**{field: merge}).update(**{field: keep})
        if n:
            moved[name] = moved.get(name, 0) + n
    return moved


def contact_merge_internal(*, keep: Contact, merge: Contact) -> dict[str, int]:
    """Fold ``merge`` into ``keep`` (both locked, same account): timeline entries and offers
    received move, roles are united, consent, phone and the portal login carried over when
    ``keep`` has none; ``merge`` is deleted."""
    moved = _move_reverse_fks(model=Contact, keep=keep, merge=merge, skip=set())
    through = Offer.sent_to.through
    offer_ids = list(through.objects.filter(contact_id=merge.pk)
                     .values_list("offer_id", flat=True))
    for offer_id in offer_ids:
        through.objects.get_or_create(offer_id=offer_id, contact_id=keep.pk)
    if offer_ids:
        moved["offers received"] = len(offer_ids)
    keep.roles = sorted(set(keep.roles) | set(merge.roles))
    if merge.offer_consent and not keep.offer_consent:
        keep.offer_consent = True
        keep.consent_given_at, keep.consent_method = merge.consent_given_at, merge.consent_method
    if not keep.phone and merge.phone:
        keep.phone = merge.phone
    if merge.user_id is not None and keep.user_id is None:
        user_id = merge.user_id
        Contact.objects.filter(pk=merge.pk).update(user=None)
        keep.user_id = user_id
        moved["portal login"] = 1
    keep.save()
    merge.delete()
    return moved


@transaction.atomic(durable=True)
def contact_merge(*, keep: Contact, merge: Contact, actor: Any,
                  now: dt.datetime | None = None) -> dict[str, int]:
    """The desk merges two contacts of one account (see :func:`contact_merge_internal`)."""
    now = now or timezone.now()
    _check(actor, keep, merge, "contact")
    keep, merge = _lock_both(Contact, keep, merge, "contact")
    if keep.account_id != merge.account_id:
        raise ValidationError({"merge": "The contacts are at two accounts: merge the accounts "
                                        "(their contacts with the same email merge with "
                                        "them)."})
    audit_record(actor=actor, action="contact.merge", obj=merge, before=None, at=now,
                 deleting=True)
    merge_label = f"{merge.name} <{merge.email}>"
    moved = contact_merge_internal(keep=keep, merge=merge)
    audit_record(actor=actor, action="contact.merge_into", obj=keep, before=None, at=now)
    interaction_record(account=keep.account, contact=keep, at=now, by=actor, kind="note",
                       summary=f"Contact {merge_label} merged into {keep.name}: "
                               + _counts(moved))
    return moved


def _counts(moved: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(moved.items())) or "nothing to move"


@transaction.atomic(durable=True)
def account_merge(*, keep: Account, merge: Account, actor: Any,
                  now: dt.datetime | None = None) -> dict[str, int]:
    """The desk merges a duplicate account into the one it keeps: contacts with the same
    email are merged, the others move; sites move (renamed when ``keep`` has one of that
    name); an open invoice draft's lines join ``keep``'s draft; contracts, tickets, offers,
    orders, invoices and the timeline move; ``merge`` is deleted. Audited with its last
    values."""
    now = now or timezone.now()
    _check(actor, keep, merge, "account")
    keep, merge = _lock_both(Account, keep, merge, "account")
    moved: dict[str, int] = {}
    for c in Contact.objects.select_for_update().filter(account=merge).order_by("pk"):
        twin = Contact.objects.select_for_update().filter(
            account=keep, email__iexact=c.email).first()
        if twin is None:
            Contact.objects.filter(pk=c.pk).update(account=keep)
            moved["contact"] = moved.get("contact", 0) + 1
        else:
            contact_merge_internal(keep=twin, merge=c)
            moved["contact merged"] = moved.get("contact merged", 0) + 1
    keep_sites = set(Site.objects.filter(account=keep).values_list("name", flat=True))
    for site in Site.objects.select_for_update().filter(account=merge).order_by("pk"):
        name = site.name
        if name in keep_sites:  # (account, name) is unique: say where it came from
            name = f"{site.name} ({merge.name})"[:200]
        Site.objects.filter(pk=site.pk).update(account=keep, name=name)
        keep_sites.add(name)
        moved["site"] = moved.get("site", 0) + 1
    drafts = {i.account_id: i for i in Invoice.objects.select_for_update().filter(
        account__in=[keep, merge], status=InvoiceStatus.DRAFT)}
    if keep.pk in drafts and merge.pk in drafts:  # one draft per account
        n = drafts[merge.pk].lines.update(invoice=drafts[keep.pk])
        moved["invoice line"] = n
        drafts[merge.pk].delete()
    for name, n in _move_reverse_fks(model=Account, keep=keep, merge=merge,
                                     skip={"contact", "site"}).items():
        moved[name] = moved.get(name, 0) + n
    before = snapshot(merge)
    audit_record(actor=actor, action="account.merge", obj=merge, before=before, at=now,
                 deleting=True)
    merge_name = merge.name
    merge.delete()
    audit_record(actor=actor, action="account.merge_into", obj=keep, before=snapshot(keep),
                 at=now)
    interaction_record(account=keep, at=now, by=actor, kind="note",
                       summary=f"Account {merge_name!r} merged into this account: "
                               + _counts(moved))
    return moved
