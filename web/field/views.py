"""The field engineer's phone view: today's jobs, the job sheet, start and completion.

Engineers see only their own work orders (the selector); completion takes parts from the van
stock through the CRM service, so stock goes down in the same transaction."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from service_crm.models import SparePart, Stock
from service_crm.models.choices import WorkOrderStatus
from service_crm.selectors import access
from service_crm.selectors.access import Role
from service_crm.services import field as field_services
from service_crm.services import work_orders as work_order_services
from web.forms import CompleteForm, ProgressForm, call_service
from web.roles import role_required

FIELD = (Role.FIELD_ENGINEER, Role.ADMIN, Role.DESK_AGENT, Role.SERVICE_MANAGER)
PART_ROWS = 3


@role_required(*FIELD)
def today(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    mine = access.work_order_list_for_user(user=request.user)
    scope = access.scope_for(user=request.user)
    if scope.engineer_id is not None:
        mine = mine.filter(engineer_id=scope.engineer_id)
    due = mine.filter(status__in=[WorkOrderStatus.SCHEDULED, WorkOrderStatus.IN_PROGRESS])
    return render(request, "field/today.html", {
        "in_progress": due.filter(status=WorkOrderStatus.IN_PROGRESS).order_by("started_at"),
        "today": due.filter(status=WorkOrderStatus.SCHEDULED, scheduled_start__gte=start,
                            scheduled_start__lt=start + dt.timedelta(days=1))
        .order_by("scheduled_start"),
        "later": due.filter(status=WorkOrderStatus.SCHEDULED,
                            scheduled_start__gte=start + dt.timedelta(days=1))
        .order_by("scheduled_start")[:10],
    })


def _stock_choices(wo: Any) -> list[tuple[str, str]]:
    """Parts in the engineer's van (or any warehouse of the region) as 'stock id' choices."""
    stock = Stock.objects.filter(quantity__gt=0).select_related("part", "warehouse")
    if wo.engineer is not None and wo.engineer.warehouse_id is not None:
        stock = stock.filter(warehouse_id=wo.engineer.warehouse_id)
    else:
        stock = stock.filter(warehouse__region=wo.ticket.asset.site.region)
    return [("", "—")] + [(str(s.pk), f"{s.part.sku} {s.part.name} ({s.quantity} in "
                                     f"{s.warehouse.code})") for s in stock[:200]]


class PartsForm(forms.Form):
    """Up to PART_ROWS lines of parts used, each a stock row and a quantity."""

    def __init__(self, *args: Any, choices: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for i in range(PART_ROWS):
            self.fields[f"stock_{i}"] = forms.ChoiceField(choices=choices, required=False,
                                                          label="Part")
            self.fields[f"qty_{i}"] = forms.IntegerField(min_value=1, required=False,
                                                         label="Qty")

    def used(self) -> list[work_order_services.PartUsed]:
        out = []
        for i in range(PART_ROWS):
            sid, qty = self.cleaned_data.get(f"stock_{i}"), self.cleaned_data.get(f"qty_{i}")
            if not sid:
                continue
            stock = Stock.objects.select_related("part", "warehouse").get(pk=int(sid))
            part: SparePart = stock.part
            out.append(work_order_services.PartUsed(part=part, warehouse=stock.warehouse,
                                                    quantity=qty or 1))
        return out


def _sheet(request: HttpRequest, wo: Any, *, complete_form: CompleteForm | None = None,
           parts_form: PartsForm | None = None, progress_form: ProgressForm | None = None,
           status: int = 200) -> HttpResponse:
    asset = wo.ticket.asset
    return render(request, "field/work_order.html", {
        "wo": wo, "ticket": wo.ticket, "asset": asset, "site": asset.site,
        "history": access.ticket_list_for_user(user=request.user).filter(asset=asset)
        .exclude(pk=wo.ticket_id).order_by("-opened_at")[:5],
        "complete_form": complete_form or CompleteForm(),
        "parts_form": parts_form or PartsForm(choices=_stock_choices(wo)),
        "parts_used": wo.parts_used.select_related("part"),
        "progress_form": progress_form or ProgressForm(initial={"notes": wo.notes}),
    }, status=status)


@role_required(*FIELD)
def work_order(request: HttpRequest, pk: int) -> HttpResponse:
    return _sheet(request, access.work_order_get_for_user(user=request.user, pk=pk))


@require_POST
@role_required(*FIELD)
def work_order_start(request: HttpRequest, pk: int) -> HttpResponse:
    wo = access.work_order_get_for_user(user=request.user, pk=pk)
    form = CompleteForm()
    if call_service(form, lambda: work_order_services.work_order_start(
            work_order=wo, actor=request.user)):  # type: ignore[arg-type]
        return HttpResponseRedirect(reverse("field:work-order", args=[wo.pk]))
    return _sheet(request, wo, complete_form=form, status=400)


def _ticked(request: HttpRequest, wo: Any) -> list[int]:
    return [i for i in range(len(wo.checklist or [])) if request.POST.get(f"check_{i}")]


def _save_progress(request: HttpRequest, wo: Any, form: forms.Form) -> bool:
    """Checklist ticks and notes from the job sheet, through the field service."""
    notes = form.cleaned_data.get("notes") if "notes" in request.POST else None
    return call_service(form, lambda: field_services.work_order_progress_save(
        work_order=wo, actor=request.user, done=_ticked(request, wo), notes=notes))


@require_POST
@role_required(*FIELD)
def work_order_progress(request: HttpRequest, pk: int) -> HttpResponse:
    """Save ticks and notes as the engineer goes: static/field.js posts here on every change
    (answering JSON); without JavaScript the "Save" button does, and comes back to the sheet."""
    wo = access.work_order_get_for_user(user=request.user, pk=pk)
    form = ProgressForm(request.POST)
    wants_json = "application/json" in request.headers.get("Accept", "")
    if form.is_valid() and _save_progress(request, wo, form):
        if wants_json:
            return JsonResponse({"saved_at": timezone.now().isoformat()})
        messages.success(request, "Checklist and notes saved.")
        return HttpResponseRedirect(reverse("field:work-order", args=[wo.pk]))
    if wants_json:
        return JsonResponse({"errors": form.errors.get_json_data()}, status=400)
    return _sheet(request, wo, complete_form=CompleteForm(), progress_form=form, status=400)


@require_POST
@role_required(*FIELD)
def work_order_complete(request: HttpRequest, pk: int) -> HttpResponse:
    """Save the ticks and notes, then complete; the report also lists what was ticked."""
    wo = access.work_order_get_for_user(user=request.user, pk=pk)
    form = CompleteForm(request.POST)
    parts = PartsForm(request.POST, choices=_stock_choices(wo))
    progress = ProgressForm(request.POST)
    # Ticks and notes are kept first, in their own transaction: a refused completion (no
    # stock, say) must not lose what the engineer recorded.
    if wo.status == WorkOrderStatus.IN_PROGRESS and not (
            progress.is_valid() and _save_progress(request, wo, progress)):
        return _sheet(request, wo, complete_form=form, parts_form=parts, progress_form=progress,
                      status=400)
    wo.refresh_from_db()
    if form.is_valid() and parts.is_valid():
        done = [item.get("task", "") for i, item in enumerate(wo.checklist or [])
                if request.POST.get(f"check_{i}")]
        open_items = [item.get("task", "") for i, item in enumerate(wo.checklist or [])
                      if not request.POST.get(f"check_{i}")]
        report = form.cleaned_data["report"]
        if done or open_items:
            report += "\n\nChecklist done: " + (", ".join(done) or "none")
            if open_items:
                report += "\nNot done: " + ", ".join(open_items)
        if call_service(form, lambda: work_order_services.work_order_complete(
                work_order=wo, actor=request.user, report=report,  # type: ignore[arg-type]
                outcome=form.cleaned_data["outcome"],
                time_spent_min=form.cleaned_data["time_spent_min"], parts=parts.used())):
            messages.success(request, f"{wo} completed.")
            return HttpResponseRedirect(reverse("field:today"))
    return _sheet(request, wo, complete_form=form, parts_form=parts, status=400)
