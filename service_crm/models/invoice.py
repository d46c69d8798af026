"""Sales orders from accepted offers, and invoice drafts: the billable work of an account,
approved by the desk before it goes out."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models

from service_crm.models.account import Account
from service_crm.models.choices import InvoiceStatus
from service_crm.models.offer import Offer


class Invoice(models.Model):
    """What an account owes for work its contract or warranty did not cover: billable charge
    lines of completed work orders, collected into one open draft per account until the desk
    approves it (then it goes to the ERP as ``invoice.approved``)."""

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="invoices")
    status = models.CharField(max_length=20, choices=InvoiceStatus.choices,
                              default=InvoiceStatus.DRAFT)
    created_at = models.DateTimeField()
    approved_at = models.DateTimeField(null=True, blank=True)
    approved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                    on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # Billable lines gather in one open draft per account.
            models.UniqueConstraint(fields=["account"], condition=models.Q(status="draft"),
                                    name="invoice_one_draft_per_account"),
        ]

    def __str__(self) -> str:
        return f"{self.number} {self.account} ({self.status})"

    @property
    def number(self) -> str:
        return f"INV-{self.pk or 0:06d}"

    @property
    def total(self) -> Decimal:
        return sum((c.amount for c in self.lines.all()), Decimal("0.00"))


class SalesOrder(models.Model):
    """An accepted offer as an order: what the customer bought, under their purchase-order
    reference, handed to the ERP as ``order.created``."""

    offer = models.OneToOneField(Offer, on_delete=models.PROTECT, related_name="sales_order")
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="sales_orders")
    po_reference = models.CharField(max_length=60, blank=True,
                                    help_text="The customer's purchase-order number")
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.number} ({self.offer.number})"

    @property
    def number(self) -> str:
        return f"SO-{self.pk or 0:06d}"
