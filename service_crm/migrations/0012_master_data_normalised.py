"""Contacts' emails become unique per account whatever their spelling.

Before the constraint, the data is cleaned: names trimmed, emails lower-cased, phone numbers in
E.164 where they parse (others are left for the desk to fix on the next edit), country codes
upper-cased; and contacts that are the same address at the same account in two spellings are
merged into the oldest one: their timeline entries, offers received, roles, consent and portal
login move over, and each merge is written to the audit log."""

import datetime as dt
import re

import django.db.models.functions.text
import phonenumbers
from django.conf import settings
from django.db import migrations, models

_SPACES = re.compile(r"\s+")


def _name(value):
    return _SPACES.sub(" ", value or "").strip()


def _phone(raw, region):
    raw = (raw or "").strip()
    if not raw:
        return ""
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return raw
    if not phonenumbers.is_valid_number(number):
        return raw
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _row(c):
    return {"id": c.pk, "account": c.account_id, "name": c.name, "email": c.email,
            "phone": c.phone, "roles": list(c.roles), "offer_consent": c.offer_consent,
            "user": c.user_id}


def clean_up(apps, schema_editor):
    Account = apps.get_model("service_crm", "Account")
    Contact = apps.get_model("service_crm", "Contact")
    Site = apps.get_model("service_crm", "Site")
    Interaction = apps.get_model("service_crm", "Interaction")
    Offer = apps.get_model("service_crm", "Offer")
    AuditLog = apps.get_model("service_crm", "AuditLog")
    now = dt.datetime.now(dt.UTC)

    for site in Site.objects.all():
        name, country = _name(site.name), (site.country or "").strip().upper()
        if (name, country) != (site.name, site.country):
            Site.objects.filter(pk=site.pk).update(name=name, country=country)
    for account in Account.objects.all():
        name = _name(account.name)
        if name != account.name and not Account.objects.filter(name=name).exists():
            Account.objects.filter(pk=account.pk).update(name=name)

    groups = {}
    for c in Contact.objects.order_by("pk"):
        groups.setdefault((c.account_id, (c.email or "").strip().lower()), []).append(c)
    through = Offer.sent_to.through
    for same in groups.values():
        if len(same) < 2:
            continue
        keep, others = same[0], same[1:]
        for dup in others:
            before = _row(dup)
            Interaction.objects.filter(contact_id=dup.pk).update(contact_id=keep.pk)
            for offer_id in through.objects.filter(contact_id=dup.pk).values_list(
                    "offer_id", flat=True):
                through.objects.get_or_create(offer_id=offer_id, contact_id=keep.pk)
            keep.roles = sorted(set(keep.roles) | set(dup.roles))
            if dup.offer_consent and not keep.offer_consent:
                keep.offer_consent = True
                keep.consent_given_at, keep.consent_method = (dup.consent_given_at,
                                                              dup.consent_method)
            if not keep.phone and dup.phone:
                keep.phone = dup.phone
            moved_user = None
            if dup.user_id is not None and keep.user_id is None:
                moved_user = dup.user_id
                Contact.objects.filter(pk=dup.pk).update(user=None)
                keep.user_id = moved_user
            keep.save()
            AuditLog.objects.create(
                at=now, actor_label="migration", action="contact.merged_duplicate",
                object_type="contact", object_id=str(dup.pk), before=before,
                after={"merged_into": keep.pk, "login_moved": moved_user is not None})
            dup.delete()

    for c in Contact.objects.select_related("account"):
        region = (Site.objects.filter(account_id=c.account_id).order_by("pk")
                  .values_list("country", flat=True).first()) or "DE"
        fields = {"name": _name(c.name), "email": (c.email or "").strip().lower(),
                  "phone": _phone(c.phone, region)}
        if any(getattr(c, k) != v for k, v in fields.items()):
            Contact.objects.filter(pk=c.pk).update(**fields)
    # Run the deferred foreign-key checks of the merges now: PostgreSQL refuses to build the
    # new index while trigger events are pending in this transaction.
    schema_editor.execute("SET CONSTRAINTS ALL IMMEDIATE")


class Migration(migrations.Migration):

    dependencies = [
        ('service_crm', '0011_webhook_outbox'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name='contact',
            name='contact_unique_email',
        ),
        migrations.RunPython(clean_up, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name='contact',
            constraint=models.UniqueConstraint(django.db.models.functions.text.Lower('email'), models.F('account'), name='contact_unique_email_ci'),
        ),
    ]
