"""Customer accounts and the people we deal with there."""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Lower

from service_crm.master_data import (
    normalise_email,
    normalise_name,
    normalise_phone,
    normalise_vat_id,
)
from service_crm.models.choices import ConsentMethod, ContactRole, Industry, Segment


class Account(models.Model):
    """A customer company that owns equipment we service; the unit sales and service share."""

    name = models.CharField(max_length=200, unique=True)
    industry = models.CharField(max_length=20, choices=Industry.choices, default=Industry.OTHER)
    segment = models.CharField(max_length=20, choices=Segment.choices, default=Segment.MIDMARKET)
    vat_id = models.CharField(
        "VAT id", max_length=20, blank=True, default="", db_index=True,
        help_text="VAT identification number with its country prefix, e.g. DE136695976; "
                  "accounts sharing one are shown as likely duplicates")
    account_manager = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="managed_accounts",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        self.name = normalise_name(self.name or "")
        try:
            self.vat_id = normalise_vat_id(self.vat_id or "")
        except ValueError as exc:
            raise ValidationError({"vat_id": str(exc)}) from None
        same = Account.objects.filter(name__iexact=self.name).exclude(pk=self.pk)
        if self.name and same.exists():
            raise ValidationError({"name": f"An account named {same[0].name!r} already exists."})


class Contact(models.Model):
    """A person at a customer account, with their roles and their consent to receive offers."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="contacts")
    name = models.CharField(max_length=200)
    email = models.EmailField()
    phone = models.CharField(max_length=40, blank=True)
    roles = ArrayField(
        models.CharField(max_length=20, choices=ContactRole.choices), default=list, blank=True
    )
    offer_consent = models.BooleanField(default=False)
    consent_given_at = models.DateTimeField(null=True, blank=True)
    consent_method = models.CharField(
        max_length=20, choices=ConsentMethod.choices, blank=True
    )
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="contact", help_text="Customer-portal login, if any",
    )

    class Meta:
        ordering = ["account", "name"]
        constraints = [
            # One address once per account, whatever its spelling (stored lower-cased too).
            models.UniqueConstraint(Lower("email"), "account", name="contact_unique_email_ci"),
            # Consent without a record of when and how it was given is not consent.
            models.CheckConstraint(
                condition=models.Q(offer_consent=False)
                | (models.Q(consent_given_at__isnull=False) & ~models.Q(consent_method="")),
                name="contact_consent_recorded",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.account})"

    def clean(self) -> None:
        errors: dict[str, str] = {}
        self.name = normalise_name(self.name or "")
        self.email = normalise_email(self.email or "")
        try:
            self.phone = normalise_phone(self.phone or "", region=self._phone_region())
        except ValueError as exc:
            errors["phone"] = str(exc)
        if self.account_id is not None and self.email and Contact.objects.filter(
                account_id=self.account_id, email__iexact=self.email).exclude(pk=self.pk).exists():
            errors["email"] = f"{self.email} is already a contact at this account."
        if self.offer_consent and self.consent_given_at is None:
            errors["consent_given_at"] = "Record when the contact consented to offers."
        if self.offer_consent and not self.consent_method:
            errors["consent_method"] = "Record how the contact consented to offers."
        if errors:
            raise ValidationError(errors)

    def _phone_region(self) -> str:
        """Numbers typed without a country code are read in the account's (first site's)
        country."""
        from service_crm import conf

        if self.account_id is not None:
            country = self.account.sites.order_by("pk").values_list("country", flat=True).first()
            if country:
                return str(country)
        return conf.default_phone_region()
