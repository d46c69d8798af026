"""API for the sales pipeline: list, read and open opportunities, move them through their stages,
change their figures, draft their quote (an offer, then approved, sent and decided through
``/offers/``), start one from an account at risk or an ageing asset, and the weighted forecast.
Office staff only; reads through the guarded selectors, writes through the audited services."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from service_crm.models import Opportunity
from service_crm.models.choices import OfferLineKind, OpportunityKind, OpportunityStage
from service_crm.selectors import access
from service_crm.selectors import activities as activity_selectors
from service_crm.selectors import opportunities as sel
from service_crm.selectors.access import STAFF_ROLES
from service_crm.services import opportunities as services
from web.api import filters as f
from web.api import serializers as s
from web.api.activities import _in_scope
from web.api.erp import StrictCharField, StrictDecimalField, StrictIntegerField
from web.api.views import ReadOnlyScoped, require_role

_ID: dict[str, Any] = {"min_value": 1, "max_value": 2_147_483_647}
_MONEY: dict[str, Any] = {"max_digits": 14, "decimal_places": 2, "min_value": 0}


class OpportunitySerializer(serializers.ModelSerializer[Opportunity]):
    number = serializers.CharField(read_only=True)
    weighted_value = serializers.DecimalField(max_digits=16, decimal_places=2, read_only=True)

    class Meta:
        model = Opportunity
        fields = ["id", "number", "account", "asset", "title", "kind", "stage", "value",
                  "currency", "probability_pct", "probability_manual", "weighted_value",
                  "expected_close", "owner", "source", "source_note", "lost_reason",
                  "created_at", "closed_at"]
        read_only_fields = fields


class OpportunityInSerializer(serializers.Serializer[Any]):
    account = StrictIntegerField(**_ID)
    asset = StrictIntegerField(required=False, allow_null=True, default=None, **_ID)
    title = StrictCharField(max_length=200)
    kind = serializers.ChoiceField(choices=OpportunityKind.choices)
    value = StrictDecimalField(**_MONEY)
    currency = StrictCharField(required=False, allow_null=True, default=None, min_length=3,
                               max_length=3, help_text="ISO 4217; default the installation's")
    expected_close = serializers.DateField()
    probability_pct = StrictIntegerField(required=False, allow_null=True, default=None,
                                         min_value=0, max_value=100,
                                         help_text="default: the stage's")
    owner = StrictIntegerField(required=False, allow_null=True, default=None,
                               help_text="user id (managers only); default: you", **_ID)


class OpportunityUpdateSerializer(serializers.Serializer[Any]):
    title = StrictCharField(required=False, max_length=200)
    value = StrictDecimalField(required=False, **_MONEY)
    expected_close = serializers.DateField(required=False)
    probability_pct = StrictIntegerField(required=False, allow_null=True, min_value=0,
                                         max_value=100,
                                         help_text="null: back to the stage's default")
    owner = StrictIntegerField(required=False, help_text="user id (managers only)", **_ID)


class MoveSerializer(serializers.Serializer[Any]):
    to = serializers.ChoiceField(choices=OpportunityStage.choices)
    probability_pct = StrictIntegerField(required=False, allow_null=True, default=None,
                                         min_value=0, max_value=100)
    lost_reason = StrictCharField(required=False, default="", allow_blank=True, max_length=300)


class QuoteLineSerializer(serializers.Serializer[Any]):
    kind = serializers.ChoiceField(choices=[(k, str(OfferLineKind(k).label))
                                            for k in services.QUOTE_LINE_KINDS])
    description = StrictCharField(max_length=300)
    quantity = StrictDecimalField(max_digits=8, decimal_places=2)
    unit_price = StrictDecimalField(max_digits=12, decimal_places=2)


class QuoteInSerializer(serializers.Serializer[Any]):
    lines = QuoteLineSerializer(many=True)
    discount_pct = StrictDecimalField(required=False, default=Decimal(0), max_digits=5,
                                      decimal_places=2, min_value=0, max_value=100)
    valid_until = serializers.DateField(required=False, allow_null=True, default=None)


class StartFromAccountSerializer(serializers.Serializer[Any]):
    account = StrictIntegerField(**_ID)
    kind = serializers.ChoiceField(choices=OpportunityKind.choices,
                                   default=OpportunityKind.CONTRACT)
    value = StrictDecimalField(required=False, default=Decimal(0), **_MONEY)
    expected_close = serializers.DateField(required=False, allow_null=True, default=None)


class StartFromAssetSerializer(serializers.Serializer[Any]):
    asset = StrictIntegerField(**_ID)
    kind = serializers.ChoiceField(choices=[
        (k, str(OpportunityKind(k).label)) for k in (
            OpportunityKind.NEW_EQUIPMENT, OpportunityKind.UPGRADE, OpportunityKind.RETROFIT)],
        default=OpportunityKind.NEW_EQUIPMENT)
    value = StrictDecimalField(required=False, default=Decimal(0), **_MONEY)
    expected_close = serializers.DateField(required=False, allow_null=True, default=None)


class ForecastRowSerializer(serializers.Serializer[Any]):
    # (the metaclass takes declared fields off the class: no clash with Field.label)
    label = serializers.CharField(  # type: ignore[assignment]
        help_text="YYYY-MM, a stage, or 'total'")
    currency = serializers.CharField()
    count = serializers.IntegerField()
    value = serializers.DecimalField(max_digits=16, decimal_places=2)
    weighted = serializers.DecimalField(max_digits=16, decimal_places=2)


class ForecastSerializer(serializers.Serializer[Any]):
    by_month = ForecastRowSerializer(many=True)
    by_stage = ForecastRowSerializer(many=True)
    totals = ForecastRowSerializer(many=True)


def _staff_user(pk: int | None) -> Any:
    if pk is None:
        return None
    found = activity_selectors.staff_users().filter(pk=pk).first()
    if found is None:
        raise ValidationError({"owner": f"No office colleague {pk}."})
    return found


class OpportunityViewSet(mixins.CreateModelMixin, ReadOnlyScoped):
    """The sales pipeline (office staff): filter by `stage`, `kind`, `account`, `asset`,
    `owner`, `open`. POST opens one; `move`, `figures` (change some), `quote`; `forecast`;
    `from-account` / `from-asset` start one from an account at risk or an ageing asset."""

    serializer_class = OpportunitySerializer
    list_selector = staticmethod(sel.opportunity_list_for_user)
    get_selector = staticmethod(sel.opportunity_get_for_user)
    filters = (f.choice("stage", "stage", OpportunityStage.choices),
               f.choice("kind", "kind", OpportunityKind.choices),
               f.integer("account", "account_id"), f.integer("asset", "asset_id"),
               f.integer("owner", "owner_id"),
               f.boolean("open", "closed_at__isnull"))

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        require_role(request, STAFF_ROLES)

    @extend_schema(request=OpportunityInSerializer, responses={201: OpportunitySerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        body = OpportunityInSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data, user = body.validated_data, request.user
        account = _in_scope(access.account_get_for_user, user=user, pk=data["account"],
                            field="account")
        asset = (_in_scope(access.asset_get_for_user, user=user, pk=data["asset"],
                           field="asset") if data["asset"] else None)
        opp = services.opportunity_create(
            account=account, asset=asset, title=data["title"], kind=data["kind"],
            value=data["value"], currency=data["currency"],
            expected_close=data["expected_close"], probability_pct=data["probability_pct"],
            owner=_staff_user(data["owner"]), actor=user)
        return Response(OpportunitySerializer(opp).data, status=201)

    @extend_schema(request=MoveSerializer, responses=OpportunitySerializer)
    @action(detail=True, methods=["post"])
    def move(self, request: Request, pk: str) -> Response:
        """Move to another stage (won only through an accepted quote; lost needs a reason)."""
        opp = self.get_object()
        body = MoveSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        opp = services.opportunity_move(opportunity=opp, actor=request.user,
                                        **body.validated_data)
        return Response(OpportunitySerializer(opp).data)

    @extend_schema(request=OpportunityUpdateSerializer, responses=OpportunitySerializer)
    @action(detail=True, methods=["post"], url_path="figures")
    def update_figures(self, request: Request, pk: str) -> Response:
        """Change title, value, expected close, probability (null: the stage's default) or,
        for managers, the owner; only the fields given."""
        opp = self.get_object()
        body = OpportunityUpdateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        reset = "probability_pct" in data and data["probability_pct"] is None
        opp = services.opportunity_update(
            opportunity=opp, actor=request.user, title=data.get("title"),
            value=data.get("value"), expected_close=data.get("expected_close"),
            probability_pct=data.get("probability_pct"), probability_reset=reset,
            owner=_staff_user(data.get("owner")))
        return Response(OpportunitySerializer(opp).data)

    @extend_schema(request=QuoteInSerializer, responses={201: s.OfferSerializer})
    @action(detail=True, methods=["post"])
    def quote(self, request: Request, pk: str) -> Response:
        """Draft the quote (equipment and service lines): an offer, approved, sent and
        decided through `/offers/`; its acceptance wins the opportunity."""
        opp = self.get_object()
        body = QuoteInSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        offer = services.opportunity_quote_create(
            opportunity=opp, actor=request.user, discount_pct=data["discount_pct"],
            valid_until=data["valid_until"],
            lines=[services.QuoteLine(**ln) for ln in data["lines"]])
        return Response(s.OfferSerializer(offer).data, status=201)

    @extend_schema(parameters=[OpenApiParameter("owner", int, description="one owner's")],
                   responses=ForecastSerializer)
    @action(detail=False, methods=["get"], pagination_class=None)
    def forecast(self, request: Request) -> Response:
        """Weighted pipeline (value x probability) of the open opportunities by expected-close
        month and by stage, per currency."""
        owner_id = f.parse(request.query_params, (f.integer("owner", "owner"),)).get("owner")
        owner = _staff_user(owner_id) if owner_id is not None else None
        fc = sel.opportunity_forecast_get(user=request.user, owner=owner)
        return Response(ForecastSerializer(fc).data)

    @extend_schema(request=StartFromAccountSerializer, responses={201: OpportunitySerializer})
    @action(detail=False, methods=["post"], url_path="from-account")
    def from_account(self, request: Request) -> Response:
        """Start one from an account at risk (the at-risk report's reasons as its why)."""
        body = StartFromAccountSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        account = _in_scope(access.account_get_for_user, user=request.user, pk=data["account"],
                            field="account")
        opp = services.opportunity_start_from_account(
            account=account, actor=request.user, kind=data["kind"], value=data["value"],
            expected_close=data["expected_close"])
        return Response(OpportunitySerializer(opp).data, status=201)

    @extend_schema(request=StartFromAssetSerializer, responses={201: OpportunitySerializer})
    @action(detail=False, methods=["post"], url_path="from-asset")
    def from_asset(self, request: Request) -> Response:
        """Start one from an ageing asset (near its equipment model's expected life)."""
        body = StartFromAssetSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        asset = _in_scope(access.asset_get_for_user, user=request.user, pk=data["asset"],
                          field="asset")
        opp = services.opportunity_start_from_asset(
            asset=asset, actor=request.user, kind=data["kind"], value=data["value"],
            expected_close=data["expected_close"])
        return Response(OpportunitySerializer(opp).data, status=201)


def register(router: Any) -> None:
    router.register("opportunities", OpportunityViewSet, basename="opportunity")
