"""Reads for contract execution and the webhook log, each guarded by the user's scope."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import Http404

from service_crm.models import PlannedVisit, WebhookDelivery, WorkOrderCharge
from service_crm.selectors.access import scope_for, work_order_list_for_user
from service_crm.services.webhooks import REPLAY_ROLES


def planned_visit_list_for_user(*, user: Any) -> QuerySet[PlannedVisit]:
    """Staff see every planned visit; a customer those of their account's contracts; engineers
    their own jobs (through the work order)."""
    scope = scope_for(user=user)
    qs = PlannedVisit.objects.select_related("contract", "asset", "work_order").order_by(
        "due", "pk")
    if scope.everything:
        return qs
    if scope.engineer_id is not None:
        return qs.filter(work_order__engineer_id=scope.engineer_id)
    if scope.account_id is not None:
        return qs.filter(contract__account_id=scope.account_id)
    return qs.none()


def planned_visit_get_for_user(*, user: Any, pk: Any) -> PlannedVisit:
    visit = planned_visit_list_for_user(user=user).filter(pk=pk).first()
    if visit is None:
        raise Http404("No such planned visit.")
    return visit


def work_order_charge_list_for_user(*, user: Any) -> QuerySet[WorkOrderCharge]:
    """The charge lines of the work orders the user may see."""
    return (WorkOrderCharge.objects.filter(work_order__in=work_order_list_for_user(user=user)
                                           .values("pk"))
            .order_by("work_order_id", "kind", "pk"))


def work_order_charge_get_for_user(*, user: Any, pk: Any) -> WorkOrderCharge:
    charge = work_order_charge_list_for_user(user=user).filter(pk=pk).first()
    if charge is None:
        raise Http404("No such charge.")
    return charge


def webhook_delivery_list_for_user(*, user: Any) -> QuerySet[WebhookDelivery]:
    """The delivery log: administrators and service managers only (it shows the ERP's
    endpoints and every business event)."""
    qs = WebhookDelivery.objects.select_related("event", "endpoint").order_by(
        "-next_attempt_at", "-pk")
    return qs if scope_for(user=user).roles & REPLAY_ROLES else qs.none()


def webhook_delivery_get_for_user(*, user: Any, pk: Any) -> WebhookDelivery:
    d = webhook_delivery_list_for_user(user=user).filter(pk=pk).first()
    if d is None:
        raise Http404("No such delivery.")
    return d
