"""Commercial offers to customers: parts, labour, contracts and renewals."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from service_crm.models.account import Account, Contact
from service_crm.models.alert import Episode
from service_crm.models.asset import Asset
from service_crm.models.choices import OfferLineKind, OfferStatus
from service_crm.models.contract import MaintenanceContract
from service_crm.models.opportunity import Opportunity
from service_crm.models.part import SparePart


class Offer(models.Model):
    """A quote to an account; a discount above the threshold needs a manager's approval."""

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="offers")
    asset = models.ForeignKey(Asset, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="offers")
    episode = models.ForeignKey(Episode, null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="offers")
    renews = models.ForeignKey(MaintenanceContract, null=True, blank=True,
                               on_delete=models.SET_NULL, related_name="renewal_offers")
    # A quote of the sales pipeline: accepting it wins the opportunity.
    opportunity = models.ForeignKey(Opportunity, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="quotes")
    status = models.CharField(max_length=20, choices=OfferStatus.choices,
                              default=OfferStatus.DRAFT)
    title = models.CharField(max_length=200)
    discount_pct = models.DecimalField(
        max_digits=5, decimal_places=2, default=Decimal("0"),
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("100"))],
    )
    valid_until = models.DateField()
    created_at = models.DateTimeField()
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    approved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                    on_delete=models.SET_NULL, related_name="+")
    approved_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    sent_to = models.ManyToManyField(Contact, blank=True, related_name="offers_received")
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        permissions = [("approve_offer", "Can approve offers with a discount above threshold")]

    def __str__(self) -> str:
        return f"{self.number}: {self.title}"

    @property
    def number(self) -> str:
        return f"Q-{self.pk or 0:06d}"


class OfferLine(models.Model):
    """One line of an offer: a part, labour hours, or a contract."""

    offer = models.ForeignKey(Offer, on_delete=models.CASCADE, related_name="lines")
    kind = models.CharField(max_length=20, choices=OfferLineKind.choices)
    part = models.ForeignKey(SparePart, null=True, blank=True, on_delete=models.PROTECT)
    description = models.CharField(max_length=300)
    quantity = models.DecimalField(max_digits=8, decimal_places=2,
                                   validators=[MinValueValidator(Decimal("0.01"))])
    unit_price = models.DecimalField(max_digits=12, decimal_places=2,
                                     validators=[MinValueValidator(Decimal("0"))])

    class Meta:
        ordering = ["offer", "pk"]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.description}"

    @property
    def total(self) -> Decimal:
        return self.quantity * self.unit_price
