"""The price list: what a part or an engineer hour costs, in a currency, for a period."""

from __future__ import annotations

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models

from service_crm.models.choices import ChargeKind
from service_crm.models.part import SparePart


class PriceListEntry(models.Model):
    """One price of the price list, usually posted by the ERP: a part (by its SKU) or an
    engineer hour, in one currency, valid from a day until a day (open-ended when empty).
    Offers, work-order charges and so invoice drafts take the entry valid on their day (the
    latest start wins when entries overlap); without one, the part's list price or the
    configured labour rate."""

    kind = models.CharField(max_length=10, choices=ChargeKind.choices)
    part = models.ForeignKey(SparePart, null=True, blank=True, on_delete=models.CASCADE,
                             related_name="prices")
    currency = models.CharField(max_length=3, validators=[RegexValidator(
        r"^[A-Z]{3}$", "An ISO 4217 code in capitals, e.g. EUR.")])
    unit_price = models.DecimalField(max_digits=12, decimal_places=2,
                                     validators=[MinValueValidator(Decimal("0"))])
    valid_from = models.DateField()
    valid_until = models.DateField(null=True, blank=True)
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["kind", "part", "currency", "-valid_from"]
        constraints = [
            models.CheckConstraint(
                condition=(models.Q(kind=ChargeKind.PART, part__isnull=False)
                           | models.Q(kind=ChargeKind.LABOUR, part__isnull=True)),
                name="price_part_or_labour"),
            models.CheckConstraint(
                condition=(models.Q(valid_until__isnull=True)
                           | models.Q(valid_until__gte=models.F("valid_from"))),
                name="price_valid_period"),
            # The ERP's upsert key: one price per part (or labour), currency and start day.
            models.UniqueConstraint(fields=["part", "currency", "valid_from"],
                                    condition=models.Q(kind=ChargeKind.PART),
                                    name="price_once_per_part"),
            models.UniqueConstraint(fields=["currency", "valid_from"],
                                    condition=models.Q(kind=ChargeKind.LABOUR),
                                    name="price_once_for_labour"),
        ]
        verbose_name_plural = "price list entries"

    def __str__(self) -> str:
        what = self.part.sku if self.part is not None else "labour (h)"
        until = self.valid_until or "open"
        return f"{what}: {self.unit_price} {self.currency} ({self.valid_from} - {until})"

    def clean(self) -> None:
        if self.valid_until and self.valid_from and self.valid_until < self.valid_from:
            raise ValidationError({"valid_until": "The price must end on or after its start."})
