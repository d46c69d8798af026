"""Reads for billing: invoice drafts and sales orders, each guarded by the user's scope."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import Http404

from service_crm.models import Invoice, SalesOrder
from service_crm.selectors.access import scope_for


def invoice_list_for_user(*, user: Any) -> QuerySet[Invoice]:
    """Staff see every invoice; a customer their own account's approved ones (a draft is the
    desk's work in progress); engineers none."""
    scope = scope_for(user=user)
    qs = Invoice.objects.select_related("account", "approved_by").order_by("-created_at", "-pk")
    if scope.everything:
        return qs
    if scope.account_id is not None:
        return qs.filter(account_id=scope.account_id, status="approved")
    return qs.none()


def invoice_get_for_user(*, user: Any, pk: Any) -> Invoice:
    invoice = invoice_list_for_user(user=user).filter(pk=pk).first()
    if invoice is None:
        raise Http404("No such invoice.")
    return invoice


def sales_order_list_for_user(*, user: Any) -> QuerySet[SalesOrder]:
    """Staff see every order; a customer their own account's; engineers none."""
    scope = scope_for(user=user)
    qs = SalesOrder.objects.select_related("offer", "account").order_by("-created_at", "-pk")
    if scope.everything:
        return qs
    if scope.account_id is not None:
        return qs.filter(account_id=scope.account_id)
    return qs.none()


def sales_order_get_for_user(*, user: Any, pk: Any) -> SalesOrder:
    order = sales_order_list_for_user(user=user).filter(pk=pk).first()
    if order is None:
        raise Http404("No such sales order.")
    return order
