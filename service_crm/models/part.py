"""Spare parts, warehouses and stock."""

from __future__ import annotations

from decimal import Decimal

from django.core.validators import MinValueValidator
from django.db import models


class Warehouse(models.Model):
    """A stock location (central depot or an engineer region's van stock)."""

    code = models.CharField(max_length=20, unique=True)
    name = models.CharField(max_length=200)
    region = models.CharField(max_length=40, db_index=True)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.code


class SparePart(models.Model):
    """A catalogue part with its list price and the equipment models it fits."""

    sku = models.CharField(max_length=40, unique=True)
    name = models.CharField(max_length=200)
    price = models.DecimalField(
        max_digits=10, decimal_places=2, validators=[MinValueValidator(Decimal("0"))]
    )
    compatible_models = models.ManyToManyField(
        "service_crm.EquipmentModel", blank=True, related_name="compatible_parts"
    )

    class Meta:
        ordering = ["sku"]

    def __str__(self) -> str:
        return f"{self.sku} {self.name}"


class Stock(models.Model):
    """How many of a part a warehouse holds."""

    part = models.ForeignKey(SparePart, on_delete=models.CASCADE, related_name="stock")
    warehouse = models.ForeignKey(Warehouse, on_delete=models.CASCADE, related_name="stock")
    quantity = models.IntegerField(default=0)

    class Meta:
        ordering = ["part", "warehouse"]
        constraints = [
            models.UniqueConstraint(fields=["part", "warehouse"], name="stock_unique"),
            models.CheckConstraint(condition=models.Q(quantity__gte=0), name="stock_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.part.sku} @ {self.warehouse.code}: {self.quantity}"
