"""REST API v1: thin viewsets over the guarded selectors and the CRM services.

Every list comes from a ``*_list_for_user`` selector and every object from a
``*_get_for_user`` selector, so an object outside the caller's scope answers 404 here exactly
as on the pages. Writes call one service each; a rule the service enforces comes back as a
400 naming the field.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from django import forms
from django.db.models import Model, Prefetch, QuerySet
from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from aftercare.contract import DEVICE_ID_PATTERN
from service_crm.adapters import profiles as profile_adapter
from service_crm.models import ApiToken, DeviceLink, EquipmentModel, OfferLine
from service_crm.models.choices import (
    AlertState,
    AssetStatus,
    EpisodeStatus,
    OfferStatus,
    Priority,
    Severity,
    TicketSource,
    TicketStatus,
    WorkOrderStatus,
)
from service_crm.selectors import access
from service_crm.selectors import api_tokens as api_token_selectors
from service_crm.selectors.access import STAFF_ROLES, Role, scope_for
from service_crm.services import api_tokens as api_token_services
from service_crm.services import devices as device_services
from service_crm.services import episodes as episode_services
from service_crm.services import offers as offer_services
from service_crm.services import tickets as ticket_services
from service_crm.services import work_orders as work_order_services
from web.api import filters as f
from web.api import serializers as s
from web.api import telemetry as telemetry_json
from web.api.auth import request_token
from web.login import RateLimitedAuthenticationForm

DESK_ROLES = frozenset({Role.ADMIN, Role.DESK_AGENT, Role.SERVICE_MANAGER})


def require_role(request: Request, roles: frozenset[Role]) -> None:
    if not scope_for(user=request.user).roles & roles:
        raise PermissionDenied("Your role may not do this.")


class ScopedViewSet(viewsets.GenericViewSet):  # type: ignore[type-arg]
    """Read-only list/retrieve through the selectors, with validated query filters."""

    list_selector: ClassVar[Callable[..., QuerySet[Any]]]
    get_selector: ClassVar[Callable[..., Model]]
    filters: ClassVar[Sequence[f.QueryFilter]] = ()

    def get_queryset(self) -> QuerySet[Any]:
        qs = type(self).list_selector(user=self.request.user)
        return f.apply(qs, self.request.query_params, self.filters)

    def get_object(self) -> Any:
        obj = type(self).get_selector(user=self.request.user, pk=self.kwargs["pk"])
        self.check_object_permissions(self.request, obj)
        return obj


class ReadOnlyScoped(mixins.ListModelMixin, mixins.RetrieveModelMixin, ScopedViewSet):
    pass


class AccountViewSet(ReadOnlyScoped):
    """Customer accounts; filter by `segment`, `industry`, `name` (contains)."""

    serializer_class = s.AccountSerializer
    list_selector = staticmethod(access.account_list_for_user)
    get_selector = staticmethod(access.account_get_for_user)
    filters = (f.text("segment", "segment"), f.text("industry", "industry"),
               f.text("name", "name__icontains"))


_NUMBERS = {"type": "array", "items": {"type": "number", "nullable": True}}
# Not paginated: the window bounds the answer. `layout=rows` (default) is a list of buckets,
# `layout=columns` one object with a series per (device, metric).
TELEMETRY_RESPONSE = {"oneOf": [
    {"type": "array", "items": {
        "type": "object",
        "required": ["bucket", "device", "metric", "min", "max", "mean", "last", "count"],
        "properties": {"bucket": {"type": "string", "format": "date-time"},
                       "device": {"type": "string"}, "metric": {"type": "string"},
                       "min": {"type": "number", "nullable": True},
                       "max": {"type": "number", "nullable": True},
                       "mean": {"type": "number", "nullable": True},
                       "last": {"type": "number", "nullable": True},
                       "count": {"type": "integer"}}}},
    {"type": "object", "required": ["resolution", "start", "end", "series"], "properties": {
        "resolution": {"type": "string"}, "start": {"type": "string", "format": "date-time"},
        "end": {"type": "string", "format": "date-time"},
        "series": {"type": "array", "items": {
            "type": "object",
            "required": ["device", "metric", "t", "min", "max", "mean", "last", "count"],
            "properties": {"device": {"type": "string"}, "metric": {"type": "string"},
                           "t": {"type": "array", "items": {"type": "integer"}},
                           "min": _NUMBERS, "max": _NUMBERS, "mean": _NUMBERS,
                           "last": _NUMBERS,
                           "count": {"type": "array", "items": {"type": "integer"}}}}}}},
]}


class AssetViewSet(ReadOnlyScoped):
    """Installed equipment; filter by `account`, `site`, `status`, `region`, `serial`,
    `parent` (the machines of a line)."""

    serializer_class = s.AssetSerializer
    list_selector = staticmethod(access.asset_list_for_user)
    get_selector = staticmethod(access.asset_get_for_user)
    filters = (f.integer("account", "site__account_id"), f.integer("site", "site_id"),
               f.choice("status", "status", AssetStatus.choices),
               f.text("region", "site__region"), f.text("serial", "serial__icontains"),
               f.integer("parent", "parent_id"))

    def get_queryset(self) -> QuerySet[Any]:
        visible = access.asset_list_for_user(user=self.request.user)
        return super().get_queryset().select_related("parent").prefetch_related(
            Prefetch("devices", queryset=DeviceLink.objects.order_by("device_key")),
            Prefetch("children", queryset=visible.order_by("serial")))

    @extend_schema(
        parameters=[
            OpenApiParameter("start", OpenApiTypes.DATETIME, description="default: end - 24 h"),
            OpenApiParameter("end", OpenApiTypes.DATETIME, description="default: now"),
            OpenApiParameter("resolution", str, enum=list(telemetry_json.RESOLUTIONS),
                             description="default 1h; 6h and 1d are folded from the 1 h "
                                         "rollups (bucket edges on UTC multiples)"),
            OpenApiParameter("metric", str, many=True),
            OpenApiParameter("layout", str, enum=list(telemetry_json.LAYOUTS),
                             description="rows (default): one object per bucket; columns: "
                                         "{resolution, start, end, series: [{device, metric, "
                                         "t: [epoch s], min, max, mean, last, count}]}"),
        ],
        responses={200: TELEMETRY_RESPONSE},
    )
    @action(detail=True, methods=["get"], pagination_class=None)
    def telemetry(self, request: Request, pk: str) -> HttpResponse:
        """Rollup buckets (min, max, mean, last, count) of the asset's devices, oldest first."""
        window = _parse_window(request.query_params)
        coarse = telemetry_json.COARSE.get(window.resolution)
        rows = access.asset_telemetry_for_user(
            user=request.user, pk=pk, start=window.start, end=window.end,
            resolution="1h" if coarse else window.resolution,
            metrics=request.query_params.getlist("metric") or None)
        if coarse:
            rows = telemetry_json.rollups_downsample(rows, width=coarse)
        # orjson straight from the rows: the DRF serializer was most of a 30-day chart's time.
        if window.layout == "columns":
            body = telemetry_json.rollups_as_columns_json(
                rows, resolution=window.resolution, start=window.start, end=window.end)
        else:
            body = telemetry_json.rollups_as_rows_json(rows)
        return HttpResponse(body, content_type="application/json")


class _Window(forms.Form):
    start = forms.DateTimeField(required=False)
    end = forms.DateTimeField(required=False)
    resolution = forms.ChoiceField(choices=[(r, r) for r in telemetry_json.RESOLUTIONS],
                                   required=False)
    layout = forms.ChoiceField(choices=[(x, x) for x in telemetry_json.LAYOUTS], required=False)


class Window:
    def __init__(self, start: dt.datetime, end: dt.datetime, resolution: Any,
                 layout: str = "rows") -> None:
        self.start, self.end, self.resolution, self.layout = start, end, resolution, layout


MAX_WINDOW = {"1m": dt.timedelta(days=7), "1h": dt.timedelta(days=400),
              "6h": dt.timedelta(days=400), "1d": dt.timedelta(days=400)}


# Outside these, `end - 24 h` and the bucket arithmetic overflow Python's datetime.
EARLIEST = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(9000, 1, 1, tzinfo=dt.UTC)


def _parse_window(params: Any) -> Window:
    form = _Window(params)
    if not form.is_valid():
        raise ValidationError({k: [e["message"] for e in v]
                               for k, v in form.errors.get_json_data().items()})
    for name in ("start", "end"):
        value = form.cleaned_data[name]
        if value is not None and not EARLIEST <= value < LATEST:
            raise ValidationError({name: [f"`{name}` must be from 1970 to 8999."]})
        if value is not None:
            # Python accepts offsets up to 24 h, PostgreSQL up to 16 h: send UTC.
            form.cleaned_data[name] = value.astimezone(dt.UTC)
    end = form.cleaned_data["end"] or timezone.now()
    start = form.cleaned_data["start"] or end - dt.timedelta(hours=24)
    resolution = form.cleaned_data["resolution"] or "1h"
    if start >= end:
        raise ValidationError({"start": ["`start` must be before `end`."]})
    if end - start > MAX_WINDOW[resolution]:
        raise ValidationError({"start": [
            f"At {resolution} resolution a window spans at most "
            f"{MAX_WINDOW[resolution].days} days."]})
    return Window(start, end, resolution, form.cleaned_data["layout"] or "rows")


class EpisodeViewSet(ReadOnlyScoped):
    """Failure episodes; filter by `status`, `severity`, `asset`, `account`."""

    serializer_class = s.EpisodeSerializer
    list_selector = staticmethod(access.episode_list_for_user)
    get_selector = staticmethod(access.episode_get_for_user)
    filters = (f.choice("status", "status", EpisodeStatus.choices),
               f.choice("severity", "peak_severity", Severity.choices),
               f.integer("asset", "asset_id"), f.integer("account", "asset__site__account_id"))

    @extend_schema(request=s.EpisodeClassifySerializer, responses=s.EpisodeSerializer)
    @action(detail=True, methods=["post"])
    def classify(self, request: Request, pk: str) -> Response:
        """Name the failure mode of an episode whose alerts the detector could not classify
        (desk roles only); with `remember`, saved into the asset's equipment model. An episode
        merged into a live one of that mode returns that one."""
        episode = self.get_object()
        require_role(request, DESK_ROLES)
        body = s.EpisodeClassifySerializer(data=request.data)
        body.is_valid(raise_exception=True)
        result = episode_services.episode_classify(
            actor=request.user, episode=episode, code=body.validated_data["failure_mode"],
            remember=body.validated_data["remember"])
        return Response(s.EpisodeSerializer(result.episode).data)

    @extend_schema(request=s.EpisodeNotAFaultSerializer, responses=s.EpisodeSerializer)
    @action(detail=True, methods=["post"], url_path="not-a-fault")
    def not_a_fault(self, request: Request, pk: str) -> Response:
        """Close an episode the detector could only guess as not a fault: its leading metrics
        are operating inputs (desk roles only); with `remember` (default), saved so into the
        asset's equipment model, which the detect worker reloads."""
        episode = self.get_object()
        require_role(request, DESK_ROLES)
        body = s.EpisodeNotAFaultSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        result = episode_services.episode_not_a_fault(
            actor=request.user, episode=episode, remember=body.validated_data["remember"])
        return Response(s.EpisodeSerializer(result.episode).data)


class AlertViewSet(ReadOnlyScoped):
    """Detector alerts; filter by `state`, `severity`, `asset`, `episode`, `device`, `since`,
    `classified`."""

    serializer_class = s.AlertSerializer
    list_selector = staticmethod(access.alert_list_for_user)
    get_selector = staticmethod(access.alert_get_for_user)
    filters = (f.choice("state", "state", AlertState.choices),
               f.choice("severity", "severity", Severity.choices),
               f.integer("asset", "asset_id"), f.integer("episode", "episode_id"),
               f.text("device", "device_key"), f.instant("since", "at__gte"),
               f.boolean("classified", "classified"))


class TicketViewSet(ReadOnlyScoped):
    """Service tickets; filter by `status`, `priority`, `account`, `asset`, `breached`.
    POST opens a ticket by phone, email or portal (customers: portal, own assets)."""

    serializer_class = s.TicketSerializer
    list_selector = staticmethod(access.ticket_list_for_user)
    get_selector = staticmethod(access.ticket_get_for_user)
    filters = (f.choice("status", "status", TicketStatus.choices),
               f.choice("priority", "priority", Priority.choices),
               f.integer("account", "account_id"), f.integer("asset", "asset_id"),
               f.boolean("breached", "resolution_breached"))

    @extend_schema(request=s.TicketOpenSerializer, responses={201: s.TicketSerializer})
    def create(self, request: Request) -> Response:
        require_role(request, STAFF_ROLES | {Role.CUSTOMER})
        body = s.TicketOpenSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        asset = access.asset_list_for_user(user=request.user).filter(pk=data["asset"]).first()
        if asset is None:  # same answer whether it does not exist or is not theirs
            raise ValidationError({"asset": [f"No asset {data['asset']} that you can see."]})
        is_staff = scope_for(user=request.user).everything
        ticket = ticket_services.ticket_open(
            asset=asset, summary=data["summary"], priority=data["priority"],
            source=data["source"] if is_staff else TicketSource.PORTAL,
            actor=request.user)  # type: ignore[arg-type]
        return Response(s.TicketSerializer(ticket).data, status=201)

    @extend_schema(request=s.TicketTransitionSerializer, responses=s.TicketSerializer)
    @action(detail=True, methods=["post"])
    def transition(self, request: Request, pk: str) -> Response:
        """Move the ticket along its workflow (desk roles only)."""
        ticket = self.get_object()
        require_role(request, DESK_ROLES)
        body = s.TicketTransitionSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        ticket = ticket_services.ticket_transition(
            ticket=ticket, to=body.validated_data["to"], actor=request.user,  # type: ignore[arg-type]
            outcome=body.validated_data["outcome"])
        return Response(s.TicketSerializer(ticket).data)


class WorkOrderViewSet(ReadOnlyScoped):
    """Work orders (an engineer sees their own); filter by `status`, `engineer`, `ticket`,
    `day` (scheduled that UTC day)."""

    serializer_class = s.WorkOrderSerializer
    list_selector = staticmethod(access.work_order_list_for_user)
    get_selector = staticmethod(access.work_order_get_for_user)
    filters = (f.choice("status", "status", WorkOrderStatus.choices),
               f.integer("engineer", "engineer_id"), f.integer("ticket", "ticket_id"),
               f.QueryFilter("day", "scheduled_start__date", forms.DateField()))

    @extend_schema(request=None, responses=s.WorkOrderSerializer)
    @action(detail=True, methods=["post"])
    def start(self, request: Request, pk: str) -> Response:
        wo = self.get_object()
        require_role(request, DESK_ROLES | {Role.FIELD_ENGINEER})
        wo = work_order_services.work_order_start(work_order=wo, actor=request.user)  # type: ignore[arg-type]
        return Response(s.WorkOrderSerializer(wo).data)

    @extend_schema(request=s.WorkOrderCompleteSerializer, responses=s.WorkOrderSerializer)
    @action(detail=True, methods=["post"])
    def complete(self, request: Request, pk: str) -> Response:
        wo = self.get_object()
        require_role(request, DESK_ROLES | {Role.FIELD_ENGINEER})
        body = s.WorkOrderCompleteSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        wo = work_order_services.work_order_complete(
            work_order=wo, actor=request.user, report=body.validated_data["report"],  # type: ignore[arg-type]
            outcome=body.validated_data["outcome"],
            time_spent_min=body.validated_data["time_spent_min"])
        return Response(s.WorkOrderSerializer(wo).data)


class OfferViewSet(ReadOnlyScoped):
    """Offers (customers see those sent to them); filter by `status`, `account`."""

    serializer_class = s.OfferSerializer
    list_selector = staticmethod(access.offer_list_for_user)
    get_selector = staticmethod(access.offer_get_for_user)
    filters = (f.choice("status", "status", OfferStatus.choices),
               f.integer("account", "account_id"))

    def get_queryset(self) -> QuerySet[Any]:
        return super().get_queryset().prefetch_related(
            Prefetch("lines", queryset=OfferLine.objects.order_by("pk")))

    @extend_schema(request=None, responses=s.OfferSerializer)
    @action(detail=True, methods=["post"], url_path="request-approval")
    def request_approval(self, request: Request, pk: str) -> Response:
        """Staff ask a service manager to approve a draft's discount (above the free limit)."""
        offer = self.get_object()
        require_role(request, STAFF_ROLES)
        offer = offer_services.offer_request_approval(offer=offer, actor=request.user)  # type: ignore[arg-type]
        return Response(s.OfferSerializer(offer).data)

    @extend_schema(request=None, responses=s.OfferSerializer)
    @action(detail=True, methods=["post"])
    def send(self, request: Request, pk: str) -> Response:
        """Staff send a draft (or approved) offer to the customer: emailed with its portal
        link; the same rules as the desk (a discount above the limit needs approval first)."""
        offer = self.get_object()
        require_role(request, STAFF_ROLES)
        offer = offer_services.offer_send(offer=offer, actor=request.user)  # type: ignore[arg-type]
        return Response(s.OfferSerializer(offer).data)

    @extend_schema(request=None, responses=s.OfferSerializer)
    @action(detail=True, methods=["post"])
    def approve(self, request: Request, pk: str) -> Response:
        """A service manager approves the discount of an offer pending approval."""
        offer = self.get_object()
        require_role(request, frozenset({Role.ADMIN, Role.SERVICE_MANAGER}))
        offer = offer_services.offer_approve(offer=offer, approver=request.user)  # type: ignore[arg-type]
        return Response(s.OfferSerializer(offer).data)

    @extend_schema(request=s.OfferDecisionSerializer, responses=s.OfferSerializer)
    @action(detail=True, methods=["post"])
    def decide(self, request: Request, pk: str) -> Response:
        """The customer accepts or declines a sent offer (staff may record it for them)."""
        offer = self.get_object()
        require_role(request, STAFF_ROLES | {Role.CUSTOMER})
        body = s.OfferDecisionSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        offer = offer_services.offer_decide(offer=offer, accepted=body.validated_data["accepted"],
                                            actor=request.user,  # type: ignore[arg-type]
                                            po_reference=body.validated_data["po_reference"])
        return Response(s.OfferSerializer(offer).data)


def _issued(issued: api_token_services.IssuedToken) -> dict[str, Any]:
    return {"token": issued.key, "id": issued.token.pk, "name": issued.token.name,
            "expires_at": issued.token.expires_at}


class TokenView(APIView):
    """POST: exchange a user name and password for a new API token (rate limited like the
    log-in); each call makes a new token. DELETE: revoke the token this request carries."""

    def initialize_request(self, request: Any, *args: Any, **kwargs: Any) -> Request:
        # POST proves identity by password: no other authentication (and so no CSRF check of
        # a browser's session) applies to it.
        self._password_exchange = request.method == "POST"
        return super().initialize_request(request, *args, **kwargs)

    def get_authenticators(self) -> list[Any]:
        return [] if getattr(self, "_password_exchange", False) else super().get_authenticators()

    def get_permissions(self) -> list[Any]:
        return [] if getattr(self, "_password_exchange", False) else list(super().get_permissions())

    @extend_schema(request=s.TokenRequestSerializer, responses={200: s.TokenSerializer})
    def post(self, request: Request) -> Response:
        form = RateLimitedAuthenticationForm(request._request, data=request.data)
        if not form.is_valid():
            messages = [str(m) for m in form.non_field_errors()] or ["Give username and password."]
            status = 429 if form.blocked else 400
            return Response({"detail": " ".join(messages),
                             "errors": {"non_field_errors": messages}}, status=status,
                            headers={"Retry-After": str(form.retry_after_s)} if form.blocked
                            else None)
        body = s.TokenRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        issued = api_token_services.api_token_create(
            user=form.get_user(), name=body.validated_data.get("name") or "api",
            expires_in_days=body.validated_data.get("expires_in_days"))
        return Response(s.TokenSerializer(_issued(issued)).data)

    @extend_schema(request=None, responses={204: None})
    def delete(self, request: Request) -> Response:
        token = request_token(request)
        if token is None:
            raise ValidationError({"token": ["This request carries no API token to revoke."]})
        api_token_services.api_token_revoke(token=token, actor=request.user, reason="logged out")
        return Response(status=204)


class ApiTokenViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin,
                      viewsets.GenericViewSet):  # type: ignore[type-arg]
    """Your API tokens (an admin sees everyone's; filter by `user`). POST makes one (the key
    is in the answer, once); DELETE revokes; `rotate` replaces one by a new key."""

    serializer_class = s.ApiTokenSerializer
    queryset = ApiToken.objects.none()  # for the schema: the real list is get_queryset's
    lookup_value_regex = r"[0-9]+"
    filters = (f.integer("user", "user_id"),)

    def get_queryset(self) -> QuerySet[Any]:
        qs = api_token_selectors.api_token_list_for_user(user=self.request.user)
        return f.apply(qs, self.request.query_params, self.filters)

    def get_object(self) -> Any:
        return api_token_selectors.api_token_get_for_user(user=self.request.user,
                                                          pk=self.kwargs["pk"])

    @extend_schema(request=s.TokenCreateSerializer, responses={201: s.TokenSerializer})
    def create(self, request: Request) -> Response:
        body = s.TokenCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        issued = api_token_services.api_token_create(
            user=request.user, name=body.validated_data["name"],
            expires_in_days=body.validated_data.get("expires_in_days"))
        return Response(s.TokenSerializer(_issued(issued)).data, status=201)

    @extend_schema(request=None, responses={204: None})
    def destroy(self, request: Request, pk: str) -> Response:
        api_token_services.api_token_revoke(token=self.get_object(), actor=request.user)
        return Response(status=204)

    @extend_schema(request=s.TokenRotateSerializer, responses={201: s.TokenSerializer})
    @action(detail=True, methods=["post"])
    def rotate(self, request: Request, pk: str) -> Response:
        """A new key for this token (same name); the old key stops working at once."""
        token = self.get_object()
        body = s.TokenRotateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        issued = api_token_services.api_token_rotate(
            token=token, actor=request.user,
            expires_in_days=body.validated_data.get("expires_in_days"))
        return Response(s.TokenSerializer(_issued(issued)).data, status=201)


class DeviceViewSet(viewsets.GenericViewSet):  # type: ignore[type-arg]
    """Devices seen on the broker; `?unclaimed=true` lists those no asset has claimed
    (staff only)."""

    serializer_class = s.DeviceSerializer
    lookup_field = "device_key"
    lookup_value_regex = DEVICE_ID_PATTERN
    filters = (f.boolean("unclaimed", "unclaimed"),)

    @extend_schema(parameters=[OpenApiParameter("unclaimed", bool)])
    def list(self, request: Request) -> Response:
        unclaimed = f.parse(request.query_params, self.filters).get("unclaimed")
        rows = access.device_list_for_user(user=request.user, unclaimed=unclaimed,
                                           limit=100_000)
        page = self.paginate_queryset(rows)  # type: ignore[arg-type]
        data = s.DeviceSerializer(page if page is not None else rows, many=True).data
        return self.get_paginated_response(data) if page is not None else Response(data)

    def retrieve(self, request: Request, device_key: str) -> Response:
        row = access.device_get_for_user(user=request.user, device_key=device_key)
        return Response(s.DeviceSerializer(row).data)

    @extend_schema(request=s.DeviceClaimSerializer, responses=s.DeviceSerializer)
    @action(detail=True, methods=["post"])
    def claim(self, request: Request, device_key: str) -> Response:
        """Attach the device to an asset (desk roles). Unclaimed devices are invisible to
        customers and engineers, so for them this answers 404."""
        row = access.device_get_for_user(user=request.user, device_key=device_key)
        require_role(request, DESK_ROLES)
        body = s.DeviceClaimSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        asset_id = body.validated_data["asset"]
        asset = access.asset_list_for_user(user=request.user).filter(pk=asset_id).first()
        if asset is None:
            raise ValidationError({"asset": [f"No asset {asset_id}."]})
        device_services.device_claim(device_key=row.device_key, asset=asset, actor=request.user)
        row = access.device_get_for_user(user=request.user, device_key=row.device_key)
        return Response(s.DeviceSerializer(row).data)

    @extend_schema(request=None, responses=s.DeviceSerializer)
    @action(detail=True, methods=["post"])
    def release(self, request: Request, device_key: str) -> Response:
        """Detach the device from its asset (desk roles); it is unclaimed again."""
        row = access.device_get_for_user(user=request.user, device_key=device_key)
        require_role(request, DESK_ROLES)
        device_services.device_release(device_key=row.device_key, actor=request.user)
        row = access.device_get_for_user(user=request.user, device_key=row.device_key)
        return Response(s.DeviceSerializer(row).data)


PROFILE_ROLES = frozenset({Role.ADMIN, Role.SERVICE_MANAGER})
# An equipment profile: the YAML format of anomaly/profiles, as JSON (kind, name, running,
# metrics, failure_modes...).
PROFILE_BODY = OpenApiTypes.OBJECT


class EquipmentModelViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin,
                            viewsets.GenericViewSet):  # type: ignore[type-arg]
    """The equipment-model catalogue (staff and engineers read it). Each model carries its
    equipment profile, what the anomaly detector knows of it. POST a profile to add or update
    the model of that `name`, PUT one to replace a model's; `profile` answers it as YAML.
    Writes: admins and service managers. The running detector picks an edit up without a
    restart."""

    queryset = EquipmentModel.objects.order_by("name")
    lookup_value_regex = r"[0-9]+"

    def get_serializer_class(self) -> Any:
        return s.EquipmentModelSerializer if self.action == "list" \
            else s.EquipmentModelDetailSerializer

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        require_role(request, STAFF_ROLES | {Role.FIELD_ENGINEER})

    def _import(self, request: Request, model: EquipmentModel | None) -> EquipmentModel:
        require_role(request, PROFILE_ROLES)
        profile = profile_adapter.profile_parse(data=request.data, source="profile")
        return profile_adapter.equipment_profile_import(
            profile=profile, actor=request.user, model=model)  # type: ignore[arg-type]

    @extend_schema(request=PROFILE_BODY, responses={201: s.EquipmentModelDetailSerializer})
    def create(self, request: Request) -> Response:
        model = self._import(request, None)
        return Response(s.EquipmentModelDetailSerializer(model).data, status=201)

    @extend_schema(request=PROFILE_BODY, responses=s.EquipmentModelDetailSerializer)
    def update(self, request: Request, pk: str) -> Response:
        model = self._import(request, self.get_object())
        return Response(s.EquipmentModelDetailSerializer(model).data)

    @extend_schema(responses={(200, "application/yaml"): OpenApiTypes.OBJECT})
    @action(detail=True, methods=["get"])
    def profile(self, request: Request, pk: str) -> HttpResponse:
        """The model's equipment profile as YAML (what `manage.py equipment_profile import`
        reads)."""
        text = profile_adapter.equipment_profile_yaml(model=self.get_object())
        return HttpResponse(text, content_type="application/yaml; charset=utf-8")
