"""Personal data: consent withdrawn by the contact, and erasure on request (GDPR art. 17).

Erasure anonymises the person everywhere the CRM keeps them, and keeps the business records
(offers, tickets, work orders, contracts, the audit trail) that the law lets a supplier keep:

- the contact row: name, email, phone, roles and consent replaced (the row stays, so offers
  sent to "a contact" still add up);
- their portal user: renamed, no password, deactivated, API tokens revoked;
- free text that names them, by name, email, phone or user name: the account's timeline,
  ticket summaries, work-order notes and reports, contract document titles;
- the sent-email log (the ``.eml`` files of the file email backend, when it is in use);
- the audit trail: their values inside earlier entries (the rows themselves stay);

then one audit row ``contact.erase`` and a timeline note say who erased whom (by number) when.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from service_crm.models import (
    AuditLog,
    Contact,
    ContractDocument,
    Interaction,
    Ticket,
    WorkOrder,
)
from service_crm.models.choices import InteractionKind
from service_crm.selectors.access import Role, has_role
from service_crm.services.api_tokens import api_tokens_revoke_for_user
from service_crm.services.audit import audit_record, interaction_record, snapshot

ERASED = "[erased]"
ERASE_ROLES = frozenset({Role.ADMIN, Role.DESK_AGENT, Role.SERVICE_MANAGER})
# Shorter strings would match inside ordinary words.
MIN_TERM_CHARS = 3


def erased_email(contact_pk: int) -> str:
    return f"erased-contact-{contact_pk}@erased.invalid"


def contact_is_erased(contact: Contact) -> bool:
    return contact.email == erased_email(contact.pk)


@transaction.atomic(durable=True)
def contact_consent_withdraw(*, contact: Contact, actor: Any,
                             now: dt.datetime | None = None) -> Contact:
    """The contact (or the desk for them) withdraws consent to offers; no offer is sent to
    them from now on. The record of when and how they had consented stays in the audit row."""
    now = now or timezone.now()
    contact = Contact.objects.select_for_update().select_related("account").get(pk=contact.pk)
    is_self = actor is not None and contact.user_id == actor.pk
    if not is_self and not has_role(user=actor, roles=ERASE_ROLES):
        raise ValidationError({"actor": "Only the contact or the service desk may do this."})
    if not contact.offer_consent:
        return contact
    before = snapshot(contact)
    contact.offer_consent = False
    contact.full_clean()
    contact.save(update_fields=["offer_consent"])
    audit_record(actor=actor, action="contact.consent_withdraw", obj=contact, before=before,
                 at=now)
    interaction_record(account=contact.account, contact=contact, kind=InteractionKind.NOTE,
                       at=now, by=actor,
                       summary=f"{contact.name} withdrew consent to offers"
                               f"{' (portal)' if is_self else ''}")
    return contact


def _terms(contact: Contact) -> list[str]:
    user = contact.user
    values = {contact.name, contact.email, contact.phone}
    if user is not None:
        values |= {user.get_username(), getattr(user, "email", ""),
                   f"{getattr(user, 'first_name', '')} {getattr(user, 'last_name', '')}"}
    # A portal user name is often the company's ("nordwerk"): a term found in the account's
    # own name is business data, and erasing it would deface the account's records.
    company = contact.account.name.casefold()
    terms = {v.strip() for v in values
             if v and len(v.strip()) >= MIN_TERM_CHARS and v.strip().casefold() not in company}
    # Longest first: "Jana Novak" goes before "Jana" could cut it in half.
    return sorted(terms, key=len, reverse=True)


def _redactor(terms: list[str]) -> re.Pattern[str]:
    # Whole words only: "Jana" is erased, "Janakiraman Ltd" is not.
    return re.compile("|".join(rf"(?<!\w){re.escape(t)}(?!\w)" for t in terms), re.IGNORECASE)


def _redact_json(value: Any, pattern: re.Pattern[str]) -> Any:
    if isinstance(value, str):
        return pattern.sub(ERASED, value)
    if isinstance(value, list):
        return [_redact_json(v, pattern) for v in value]
    if isinstance(value, dict):
        return {k: _redact_json(v, pattern) for k, v in value.items()}
    return value


def _redact_rows(qs: Any, fields: list[str], pattern: re.Pattern[str]) -> int:
    changed = 0
    for row in qs:
        updates = [f for f in fields if pattern.search(getattr(row, f) or "")]
        for f in updates:
            setattr(row, f, pattern.sub(ERASED, getattr(row, f)))
        if updates:
            row.save(update_fields=updates)
            changed += 1
    return changed


def _redact_audit(pattern: re.Pattern[str], terms: list[str]) -> int:
    if not terms:
        return 0
    like = [f"%{t}%" for t in terms]
    rows = AuditLog.objects.raw(
        "SELECT * FROM service_crm_auditlog WHERE before::text ILIKE ANY(%s) "
        "OR after::text ILIKE ANY(%s) OR actor_label ILIKE ANY(%s)", [like, like, like])
    changed = 0
    with connection.cursor() as cur:
        cur.execute("SET LOCAL aftercare.audit_redaction = 'on'")
        for row in rows:
            before, after = _redact_json(row.before, pattern), _redact_json(row.after, pattern)
            label = pattern.sub(ERASED, row.actor_label)
            if (before, after, label) != (row.before, row.after, row.actor_label):
                cur.execute("UPDATE service_crm_auditlog SET before = %s, after = %s, "
                            "actor_label = %s WHERE id = %s",
                            [None if before is None else json.dumps(before),
                             None if after is None else json.dumps(after), label, row.pk])
                changed += 1
        cur.execute("SET LOCAL aftercare.audit_redaction = 'off'")
    return changed


def _redact_mail_log(pattern: re.Pattern[str]) -> int:
    """The file email backend's messages (the demo's and development's sent-email log)."""
    if settings.EMAIL_BACKEND != "django.core.mail.backends.filebased.EmailBackend":
        return 0
    directory = Path(str(getattr(settings, "EMAIL_FILE_PATH", "")))
    changed = 0
    for path in sorted(directory.glob("*")) if directory.is_dir() else []:
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8", errors="surrogateescape")
        redacted = pattern.sub(ERASED, text)
        if redacted != text:
            tmp = path.with_name(path.name + ".erasing")
            tmp.write_text(redacted, encoding="utf-8", errors="surrogateescape")
            tmp.replace(path)
            changed += 1
    return changed


@transaction.atomic(durable=True)
def contact_erase(*, contact: Contact, actor: Any,
                  now: dt.datetime | None = None) -> dict[str, int]:
    """Erase a contact's personal data (see the module docstring); desk roles only.
    Returns how many records of each kind were anonymised. Erasing twice changes nothing."""
    now = now or timezone.now()
    if not has_role(user=actor, roles=ERASE_ROLES):
        raise ValidationError({"actor": "Only the service desk erases personal data."})
    contact = (Contact.objects.select_for_update(of=("self",))
               .select_related("account", "user").get(pk=contact.pk))
    if contact_is_erased(contact):
        return {}
    terms = _terms(contact)
    # Never an empty pattern: it would match everywhere. The name is at least a term as long
    # as it is not the company's; a contact with nothing to search for has only its row.
    pattern = _redactor(terms) if terms else re.compile(r"(?!x)x")
    account = contact.account
    counts = {
        "timeline": _redact_rows(Interaction.objects.filter(account=account),
                                 ["summary", "body"], pattern),
        "tickets": _redact_rows(Ticket.objects.filter(account=account), ["summary"], pattern),
        "work_orders": _redact_rows(WorkOrder.objects.filter(ticket__account=account),
                                    ["notes", "completion_report"], pattern),
        "documents": _redact_rows(ContractDocument.objects.filter(contract__account=account),
                                  ["title"], pattern),
        "emails": _redact_mail_log(pattern),
        "audit": _redact_audit(pattern, terms),
    }
    user = contact.user
    if user is not None:
        api_tokens_revoke_for_user(user=user, actor=actor, reason="owner erased", now=now)
        user.username = f"erased-{user.pk}"
        user.email = ""
        user.first_name = user.last_name = ""
        user.is_active = False
        user.set_unusable_password()
        user.save()
    contact.name = f"Erased contact #{contact.pk}"
    contact.email = erased_email(contact.pk)
    contact.phone = ""
    contact.roles = []
    contact.offer_consent, contact.consent_given_at, contact.consent_method = False, None, ""
    contact.full_clean()
    contact.save()
    audit_record(actor=actor, action="contact.erase", obj=contact, before=None, at=now)
    interaction_record(account=account, contact=contact, kind=InteractionKind.NOTE, at=now,
                       by=actor, summary=f"Personal data of contact #{contact.pk} erased on "
                                         "request")
    return counts
