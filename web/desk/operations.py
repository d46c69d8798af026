"""Desk pages for service operations: planned visits, work-order charges, invoice drafts and
their approval, sales orders, and the webhook delivery log with replay. Reads go through the
guarded selectors, each action through one audited service that checks the role again."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import messages
from django.db.models import Q
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import path, reverse
from django.views.decorators.http import require_POST

from service_crm import conf
from service_crm.models.choices import DeliveryStatus, InvoiceStatus, PlannedVisitStatus
from service_crm.selectors import access
from service_crm.selectors import billing as billing_selectors
from service_crm.selectors import service_ops as ops_selectors
from service_crm.selectors.access import has_role
from service_crm.services import billing as billing_services
from service_crm.services import planned_maintenance as plan_services
from service_crm.services import renewal_offers as quote_services
from service_crm.services import webhooks as webhook_services
from web.desk.views import STAFF, BadFilter, _bad_filter, _choice, _page, status_list
from web.forms import button_action, call_service
from web.roles import role_required

REPLAY = tuple(webhook_services.REPLAY_ROLES)
COVERED_CHOICES = [("yes", "Covered"), ("no", "Billable")]


class VisitCancelForm(forms.Form):
    reason = forms.CharField(max_length=150, label="Why")


@role_required(*STAFF)
def operations(request: HttpRequest) -> HttpResponse:
    """One page that leads to the operations lists, with what waits for the desk."""
    user = request.user
    return render(request, "desk/ops_index.html", {
        "planned": ops_selectors.planned_visit_list_for_user(user=user).filter(
            status=PlannedVisitStatus.PLANNED).count(),
        "drafts": billing_selectors.invoice_list_for_user(user=user).filter(
            status=InvoiceStatus.DRAFT).count(),
        "orders": billing_selectors.sales_order_list_for_user(user=user).count(),
        "can_see_webhooks": has_role(user=user, roles=webhook_services.REPLAY_ROLES),
        "dead": ops_selectors.webhook_delivery_list_for_user(user=user).filter(
            status=DeliveryStatus.DEAD).count(),
    })


# --- planned visits --------------------------------------------------------------------


@role_required(*STAFF)
def planned_visit_list(request: HttpRequest) -> HttpResponse:
    return status_list(
        request, ops_selectors.planned_visit_list_for_user(user=request.user).select_related(
            "contract__account", "asset__site"),
        choices=PlannedVisitStatus.choices, template="desk/ops_planned_visits.html",
        title="Planned visits", url_name="desk:planned-visits")


def _visit_page(request: HttpRequest, pk: int, *, form: VisitCancelForm | None = None,
                status: int = 200) -> HttpResponse:
    visit = ops_selectors.planned_visit_get_for_user(user=request.user, pk=pk)
    return render(request, "desk/ops_planned_visit.html", {
        "visit": visit, "form": form or VisitCancelForm(),
        "can_cancel": has_role(user=request.user, roles=plan_services.CANCEL_ROLES)
        and visit.status == PlannedVisitStatus.PLANNED}, status=status)


@role_required(*STAFF)
def planned_visit_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _visit_page(request, pk)


@require_POST
@role_required(*plan_services.CANCEL_ROLES)
def planned_visit_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    visit = ops_selectors.planned_visit_get_for_user(user=request.user, pk=pk)
    form = VisitCancelForm(request.POST)
    if form.is_valid() and call_service(form, lambda: plan_services.planned_visit_cancel(
            visit=visit, actor=request.user, reason=form.cleaned_data["reason"])):
        messages.success(request, f"Planned visit {visit.due} for {visit.asset} dropped.")
        return HttpResponseRedirect(reverse("desk:planned-visit", args=[visit.pk]))
    return _visit_page(request, pk, form=form, status=400)


# --- charges ---------------------------------------------------------------------------


@role_required(*STAFF)
def charge_list(request: HttpRequest) -> HttpResponse:
    """Every charge line of completed work orders, covered or billable, newest job first."""
    qs = ops_selectors.work_order_charge_list_for_user(user=request.user).select_related(
        "work_order__ticket__account", "invoice", "offer").order_by(
        "-work_order_id", "kind", "pk")
    try:
        covered = _choice(request, "covered", COVERED_CHOICES, "")
    except BadFilter as e:
        return _bad_filter(request, e, title="Charges", url_name="desk:charges")
    if covered:
        qs = qs.filter(covered=covered == "yes")
    return render(request, "desk/ops_charges.html", {
        "page": _page(request, qs), "covered": covered, "choices": COVERED_CHOICES,
        "can_quote": has_role(user=request.user, roles=quote_services.QUOTE_ROLES)})


@require_POST
@role_required(*quote_services.QUOTE_ROLES)
def work_order_quote(request: HttpRequest, pk: int) -> HttpResponse:
    """Quote a job's uncovered work (not invoiced yet) as a draft offer, and open it."""
    wo = access.work_order_get_for_user(user=request.user, pk=pk)
    done = button_action(lambda: quote_services.offer_create_for_uncovered_work(
        work_order=wo, actor=request.user))
    if done.result is not None:
        messages.success(request, f"Offer {done.result.number} drafted for WO-{wo.pk:06d}: "
                                  "check it and send it.")
        return HttpResponseRedirect(reverse("desk:offer", args=[done.result.pk]))
    for error in done.form.non_field_errors():
        messages.error(request, str(error))
    return HttpResponseRedirect(reverse("desk:charges") + "?covered=no")


# --- invoices --------------------------------------------------------------------------


@role_required(*STAFF)
def invoice_list(request: HttpRequest) -> HttpResponse:
    return status_list(request, billing_selectors.invoice_list_for_user(user=request.user),
                       choices=InvoiceStatus.choices, template="desk/ops_invoice_list.html",
                       title="Invoices", url_name="desk:invoices",
                       prepare=lambda qs: qs.prefetch_related("lines"))


def _invoice_page(request: HttpRequest, pk: int, *, form: forms.Form | None = None,
                  status: int = 200) -> HttpResponse:
    invoice = billing_selectors.invoice_get_for_user(user=request.user, pk=pk)
    lines = list(invoice.lines.select_related("work_order").order_by("pk"))
    return render(request, "desk/ops_invoice_detail.html", {
        "invoice": invoice, "lines": lines, "total": sum(ln.amount for ln in lines),
        "currency": conf.currency(),
        "form": form,
        "can_approve": invoice.status == InvoiceStatus.DRAFT
        and has_role(user=request.user, roles=billing_services.APPROVE_ROLES)}, status=status)


@role_required(*STAFF)
def invoice_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _invoice_page(request, pk)


@require_POST
@role_required(*billing_services.APPROVE_ROLES)
def invoice_approve(request: HttpRequest, pk: int) -> HttpResponse:
    invoice = billing_selectors.invoice_get_for_user(user=request.user, pk=pk)
    done = button_action(lambda: billing_services.invoice_approve(invoice=invoice,
                                                                  actor=request.user))
    if done.ok:
        messages.success(request, f"{invoice.number} approved; the ERP is told.")
        return HttpResponseRedirect(reverse("desk:invoice", args=[invoice.pk]))
    return _invoice_page(request, pk, form=done.form, status=400)


# --- sales orders ----------------------------------------------------------------------


@role_required(*STAFF)
def sales_order_list(request: HttpRequest) -> HttpResponse:
    qs = billing_selectors.sales_order_list_for_user(user=request.user)
    q = request.GET.get("q", "").strip()[:60]
    if q:  # by the customer's PO reference or the account
        qs = qs.filter(Q(po_reference__icontains=q) | Q(account__name__icontains=q))
    return render(request, "desk/ops_order_list.html", {"page": _page(request, qs), "q": q})


@role_required(*STAFF)
def sales_order_detail(request: HttpRequest, pk: int) -> HttpResponse:
    order = billing_selectors.sales_order_get_for_user(user=request.user, pk=pk)
    lines = list(order.offer.lines.all())
    gross = sum(ln.total for ln in lines)
    net = gross * (100 - order.offer.discount_pct) / 100
    return render(request, "desk/ops_order_detail.html", {
        "order": order, "offer": order.offer, "lines": lines, "gross": gross,
        "currency": conf.currency(),
        "net": round(net, 2)})


# --- webhook log -----------------------------------------------------------------------


@role_required(*REPLAY)
def webhook_list(request: HttpRequest) -> HttpResponse:
    return status_list(request, ops_selectors.webhook_delivery_list_for_user(user=request.user),
                       choices=DeliveryStatus.choices, template="desk/ops_webhook_list.html",
                       title="Webhook deliveries", url_name="desk:webhooks")


def _webhook_page(request: HttpRequest, pk: int, *, form: forms.Form | None = None,
                  status: int = 200) -> HttpResponse:
    delivery = ops_selectors.webhook_delivery_get_for_user(user=request.user, pk=pk)
    return render(request, "desk/ops_webhook_detail.html", {
        "d": delivery, "form": form,
        "payload": json.dumps(delivery.event.payload, indent=2, sort_keys=True,
                              ensure_ascii=False)}, status=status)


@role_required(*REPLAY)
def webhook_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _webhook_page(request, pk)


@require_POST
@role_required(*REPLAY)
def webhook_replay(request: HttpRequest, pk: int) -> HttpResponse:
    delivery = ops_selectors.webhook_delivery_get_for_user(user=request.user, pk=pk)
    done = button_action(lambda: webhook_services.webhook_replay(delivery=delivery,
                                                                 actor=request.user))
    if done.ok:
        messages.success(request, "Queued again under the same idempotency key.")
        return HttpResponseRedirect(reverse("desk:webhook", args=[delivery.pk]))
    return _webhook_page(request, pk, form=done.form, status=400)


def url_patterns() -> list[Any]:
    """The operations pages, included by :mod:`web.desk.urls`."""
    return [
        path("operations/", operations, name="operations"),
        path("planned-visits/", planned_visit_list, name="planned-visits"),
        path("planned-visits/<int:pk>/", planned_visit_detail, name="planned-visit"),
        path("planned-visits/<int:pk>/cancel/", planned_visit_cancel,
             name="planned-visit-cancel"),
        path("charges/", charge_list, name="charges"),
        path("work-orders/<int:pk>/quote/", work_order_quote, name="work-order-quote"),
        path("invoices/", invoice_list, name="invoices"),
        path("invoices/<int:pk>/", invoice_detail, name="invoice"),
        path("invoices/<int:pk>/approve/", invoice_approve, name="invoice-approve"),
        path("orders/", sales_order_list, name="orders"),
        path("orders/<int:pk>/", sales_order_detail, name="order"),
        path("webhooks/", webhook_list, name="webhooks"),
        path("webhooks/<int:pk>/", webhook_detail, name="webhook"),
        path("webhooks/<int:pk>/replay/", webhook_replay, name="webhook-replay"),
    ]
