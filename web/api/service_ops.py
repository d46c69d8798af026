"""API for contract execution and the webhook log: planned visits, work-order charges
(covered or billable), and webhook deliveries with replay. Reads go through the scoped
selectors; the replay goes through the audited service."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from service_crm.models import PlannedVisit, WebhookDelivery, WorkOrderCharge
from service_crm.models.choices import DeliveryStatus, PlannedVisitStatus
from service_crm.selectors import service_ops as sel
from service_crm.services.webhooks import REPLAY_ROLES, webhook_replay
from web.api import filters as f
from web.api.views import ReadOnlyScoped, require_role


class PlannedVisitSerializer(serializers.ModelSerializer[PlannedVisit]):
    class Meta:
        model = PlannedVisit
        fields = ["id", "contract", "asset", "due", "status", "work_order", "note"]
        read_only_fields = fields


class WorkOrderChargeSerializer(serializers.ModelSerializer[WorkOrderCharge]):
    amount = serializers.DecimalField(max_digits=14, decimal_places=2, read_only=True)

    class Meta:
        model = WorkOrderCharge
        fields = ["id", "work_order", "kind", "part", "description", "quantity", "unit_price",
                  "amount", "covered", "covered_by"]
        read_only_fields = fields


class WebhookDeliverySerializer(serializers.ModelSerializer[WebhookDelivery]):
    event_id = serializers.UUIDField(source="event.id", read_only=True)
    topic = serializers.CharField(source="event.topic", read_only=True)
    endpoint = serializers.CharField(source="endpoint.name", read_only=True)

    class Meta:
        model = WebhookDelivery
        fields = ["id", "event_id", "topic", "endpoint", "status", "attempts",
                  "next_attempt_at", "last_status_code", "last_error", "delivered_at"]
        read_only_fields = fields


class PlannedVisitViewSet(ReadOnlyScoped):
    """Planned maintenance visits from the contracts' visit plans; filter by `contract`,
    `asset`, `status`."""

    serializer_class = PlannedVisitSerializer
    list_selector = staticmethod(sel.planned_visit_list_for_user)
    get_selector = staticmethod(sel.planned_visit_get_for_user)
    filters = (f.integer("contract", "contract_id"), f.integer("asset", "asset_id"),
               f.choice("status", "status", PlannedVisitStatus.choices))


class WorkOrderChargeViewSet(ReadOnlyScoped):
    """What completed work orders cost, line by line, covered or billable; filter by
    `work_order`, `covered` (true/false)."""

    serializer_class = WorkOrderChargeSerializer
    list_selector = staticmethod(sel.work_order_charge_list_for_user)
    get_selector = staticmethod(sel.work_order_charge_get_for_user)
    filters = (f.integer("work_order", "work_order_id"),
               f.boolean("covered", "covered"))


class WebhookDeliveryViewSet(ReadOnlyScoped):
    """The webhook delivery log (administrators and service managers); filter by `status`;
    `replay` sends a delivery again under the same idempotency key."""

    serializer_class = WebhookDeliverySerializer
    list_selector = staticmethod(sel.webhook_delivery_list_for_user)
    get_selector = staticmethod(sel.webhook_delivery_get_for_user)
    filters = (f.choice("status", "status", DeliveryStatus.choices),)

    @extend_schema(request=None, responses=WebhookDeliverySerializer)
    @action(detail=True, methods=["post"])
    def replay(self, request: Request, pk: str) -> Response:
        require_role(request, REPLAY_ROLES)
        delivery = self.get_object()
        delivery = webhook_replay(delivery=delivery, actor=request.user)
        return Response(WebhookDeliverySerializer(delivery).data)


def register(router: Any) -> None:
    router.register("planned-visits", PlannedVisitViewSet, basename="plannedvisit")
    router.register("work-order-charges", WorkOrderChargeViewSet, basename="workordercharge")
    router.register("webhook-deliveries", WebhookDeliveryViewSet, basename="webhookdelivery")
