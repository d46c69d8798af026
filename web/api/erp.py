"""Inbound ERP API: the ERP posts part and labour prices (the price list) and stock levels,
as idempotent batch upserts, with an API token of a service-manager (integration) user. A
wrong row refuses the whole batch with a 400 naming the row and field (``prices[3].sku``).
Staff read the price list back at ``/api/v1/prices/``."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from service_crm.models import PriceListEntry
from service_crm.models.choices import ChargeKind
from service_crm.selectors import prices as price_selectors
from service_crm.services import erp as erp_services
from web.api import filters as f
from web.api.views import ReadOnlyScoped, require_role


class StrictDecimalField(serializers.DecimalField):
    """Money as a JSON string ("84.50"), as the schema says: a JSON number is refused rather
    than read through a float."""

    def to_internal_value(self, data: Any) -> Decimal:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer, not a string of digits or a boolean."""

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictCharField(serializers.CharField):
    """A JSON string, not a number turned into one."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class PriceItemSerializer(serializers.Serializer[Any]):
    kind = serializers.ChoiceField(choices=ChargeKind.choices,
                                   help_text="part (needs `sku`) or labour (one engineer hour)")
    sku = StrictCharField(max_length=40, required=False, allow_null=True, default=None,
                          help_text="the part's SKU in the catalogue; empty for labour")
    currency = serializers.RegexField(r"^[A-Z]{3}$", max_length=3,
                                      help_text="ISO 4217, e.g. EUR")
    unit_price = StrictDecimalField(max_digits=12, decimal_places=2, min_value=Decimal("0"))
    valid_from = serializers.DateField()
    valid_until = serializers.DateField(required=False, allow_null=True, default=None,
                                        help_text="last day the price applies; empty = open")


class PriceUploadSerializer(serializers.Serializer[Any]):
    prices = serializers.ListField(child=PriceItemSerializer(), allow_empty=False,
                                   max_length=erp_services.MAX_ROWS)


class StockItemSerializer(serializers.Serializer[Any]):
    sku = StrictCharField(max_length=40)
    warehouse = StrictCharField(max_length=20, help_text="the warehouse's code")
    quantity = StrictIntegerField(min_value=0, max_value=2_000_000_000,
                                  help_text="units on hand (absolute, not a change)")


class StockUploadSerializer(serializers.Serializer[Any]):
    stock = serializers.ListField(child=StockItemSerializer(), allow_empty=False,
                                  max_length=erp_services.MAX_ROWS)


class UpsertReportSerializer(serializers.Serializer[Any]):
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    unchanged = serializers.IntegerField()


class PriceListEntrySerializer(serializers.ModelSerializer[PriceListEntry]):
    sku = serializers.CharField(source="part.sku", read_only=True, allow_null=True,
                                default=None)

    class Meta:
        model = PriceListEntry
        fields = ["id", "kind", "sku", "currency", "unit_price", "valid_from", "valid_until",
                  "updated_at"]
        read_only_fields = fields


def _flat(errors: Any, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested errors ({"prices": [{}, {"sku": [...]}]}) as flat keys
    ({"prices[1].sku": [...]}), the shape every 400 of the API has."""
    out: dict[str, list[str]] = {}
    if isinstance(errors, dict):
        for key, value in errors.items():
            if isinstance(key, int):  # a ListField's row number
                name = f"{prefix}[{key}]"
            else:
                name = f"{prefix}.{key}" if prefix else str(key)
            out.update(_flat(value, name))
    elif isinstance(errors, list) and errors and all(isinstance(e, str) for e in errors):
        out[prefix or "non_field_errors"] = [str(e) for e in errors]
    elif isinstance(errors, list):
        for i, value in enumerate(errors):
            out.update(_flat(value, f"{prefix}[{i}]"))
    elif errors:
        out[prefix or "non_field_errors"] = [str(errors)]
    return out


def _valid(serializer: serializers.Serializer[Any]) -> dict[str, Any]:
    if not serializer.is_valid():
        raise ValidationError(_flat(serializer.errors))
    return dict(serializer.validated_data)


class ErpViewSet(viewsets.ViewSet):
    """Batch upserts from the ERP (administrators and service managers)."""

    @extend_schema(request=PriceUploadSerializer, responses=UpsertReportSerializer)
    @action(detail=False, methods=["post"])
    def prices(self, request: Request) -> Response:
        """Create or update price list entries, keyed by (part or labour, currency,
        valid_from); the same batch again changes nothing."""
        require_role(request, erp_services.ERP_ROLES)
        data = _valid(PriceUploadSerializer(data=request.data))
        report = erp_services.prices_upsert(actor=request.user, rows=[
            erp_services.PriceRow(kind=row["kind"], sku=row["sku"] or None,
                                  currency=row["currency"], unit_price=row["unit_price"],
                                  valid_from=row["valid_from"], valid_until=row["valid_until"])
            for row in data["prices"]])
        return Response(UpsertReportSerializer(report).data)

    @extend_schema(request=StockUploadSerializer, responses=UpsertReportSerializer)
    @action(detail=False, methods=["post"])
    def stock(self, request: Request) -> Response:
        """Set stock levels (part by SKU, warehouse by code) to the ERP's counts."""
        require_role(request, erp_services.ERP_ROLES)
        data = _valid(StockUploadSerializer(data=request.data))
        report = erp_services.stock_upsert(actor=request.user, rows=[
            erp_services.StockRow(sku=row["sku"], warehouse=row["warehouse"],
                                  quantity=row["quantity"]) for row in data["stock"]])
        return Response(UpsertReportSerializer(report).data)


class PriceListViewSet(ReadOnlyScoped):
    """The price list (office staff); filter by `kind`, `sku`, `currency`."""

    serializer_class = PriceListEntrySerializer
    list_selector = staticmethod(price_selectors.price_list_for_user)
    get_selector = staticmethod(price_selectors.price_get_for_user)
    filters = (f.choice("kind", "kind", ChargeKind.choices), f.text("sku", "part__sku"),
               f.text("currency", "currency"))


def register(router: Any) -> None:
    router.register("erp", ErpViewSet, basename="erp")
    router.register("prices", PriceListViewSet, basename="pricelistentry")
