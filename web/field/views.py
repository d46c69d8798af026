"""The field engineer's phone view: today's jobs, the job sheet, start and completion.

Engineers see only their own work orders (the selector); completion takes parts from the van
stock through the CRM service, so stock goes down in the same transaction.

Offline use: the pages are installable (``manifest``) and a service worker (``service_worker``,
scoped to /field/) keeps the engineer's pages for use without signal; static/field.js queues
start, progress and completion in IndexedDB and replays them here when the phone is back
online, asking for JSON. A replay that no longer fits the work order (reassigned, cancelled,
completed meanwhile, checklist changed) is answered 404/409 with a message saying so, and
nothing is applied."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.db.models import Q
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseRedirect,
    JsonResponse,
)
from django.shortcuts import render
from django.templatetags.static import static
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from service_crm.models import SparePart, Stock, WorkOrderPhoto
from service_crm.models.choices import WorkOrderStatus
from service_crm.models.field_evidence import MAX_PHOTO_BYTES
from service_crm.selectors import access
from service_crm.selectors.access import Role
from service_crm.selectors.service_report import service_report_pdf
from service_crm.selectors.work_orders import work_order_record_get
from service_crm.services import field as field_services
from service_crm.services import field_evidence as evidence_services
from service_crm.services import work_orders as work_order_services
from web.forms import CompleteForm, PhotoForm, ProgressForm, button_action, call_service
from web.roles import role_required
from web.uploads import upload_form_valid

FIELD = (Role.FIELD_ENGINEER, Role.ADMIN, Role.DESK_AGENT, Role.SERVICE_MANAGER)
PART_ROWS = 3
SERVICE_WORKER = Path(settings.BASE_DIR) / "static" / "field-sw.js"
NOT_YOURS = ("This work order is no longer assigned to you (reassigned or removed): "
             "what you recorded offline was not sent. Call the service desk.")


def _label(wo: Any) -> str:
    return f"WO-{wo.pk:06d}"


def _wants_json(request: HttpRequest) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def _json_404(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """A replayed offline action for a work order the user can no longer see gets a JSON
    answer the phone can show (still a 404: nothing about the work order is revealed)."""
    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except Http404:
            if _wants_json(request):
                return JsonResponse({"conflict": NOT_YOURS}, status=404)
            raise
    return wrapped


def offline_base(wo: Any) -> str:
    """What the phone's copy of the job sheet was based on: engineer and checklist length."""
    return f"{wo.engineer_id or 0}:{len(wo.checklist or [])}"


def _conflict(request: HttpRequest, wo: Any) -> JsonResponse | None:
    """409 when a replayed form was filled on a sheet that no longer matches the work order."""
    base = request.POST.get("offline_base")
    if not base or base == offline_base(wo):
        return None
    engineer, _, length = base.partition(":")
    if engineer != str(wo.engineer_id or 0):
        message = (f"{_label(wo)} was reassigned to {wo.engineer or 'nobody'} meanwhile: "
                   "your offline changes were not applied.")
    else:
        message = (f"The checklist of {_label(wo)} was changed on the server meanwhile (now "
                   f"{len(wo.checklist or [])} items, your copy had {length}): open the job "
                   "again and redo the ticks.")
    return JsonResponse({"conflict": message, "status": wo.status}, status=409)


def _refused(form: forms.Form, wo: Any) -> JsonResponse:
    """A service's refusal as JSON: a status rule is a conflict (409) with the current
    status, anything else a plain 400 by field."""
    wo.refresh_from_db()
    errors = form.errors.get_json_data()
    status_errors = [e["message"] for e in errors.get("__all__", [])
                     if e["message"].startswith("status: ")]
    if status_errors:
        now_is = wo.get_status_display().lower()
        return JsonResponse({"conflict": f"{_label(wo)} is {now_is} on the server: "
                                         f"{status_errors[0][len('status: '):]}",
                             "status": wo.status}, status=409)
    return JsonResponse({"errors": errors}, status=400)


def manifest(request: HttpRequest) -> JsonResponse:
    """The web app manifest: "My jobs" can be installed on the phone's home screen."""
    icons = [{"src": static(f"field-icon-{n}.png"), "sizes": f"{n}x{n}", "type": "image/png",
              "purpose": "any"} for n in (192, 512)]
    icons.append({"src": static("field-icon.svg"), "sizes": "any", "type": "image/svg+xml",
                  "purpose": "any"})
    return JsonResponse({
        "name": "Aftercare · My jobs", "short_name": "My jobs", "id": "/field/",
        "start_url": "/field/", "scope": "/field/", "display": "standalone",
        "background_color": "#f5f7fa", "theme_color": "#102a43", "icons": icons,
    }, content_type="application/manifest+json")


def service_worker(request: HttpRequest) -> HttpResponse:
    """The service worker script, from the app's own URL so that it may control /field/.
    Never cached by the browser's HTTP cache: a new version must reach the phones."""
    response = HttpResponse(SERVICE_WORKER.read_text(encoding="utf-8"),
                            content_type="application/javascript; charset=utf-8")
    response["Cache-Control"] = "no-cache"
    response["Service-Worker-Allowed"] = "/field/"
    return response


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
        "done_today": mine.filter(status=WorkOrderStatus.COMPLETED, completed_at__gte=start)
        .order_by("-completed_at")[:20],
        "today_key": now.strftime("%Y%m%d"),
    })


def _stock_choices(wo: Any) -> list[tuple[str, str]]:
    """Parts in the engineer's van (or any warehouse of the region) as 'stock id' choices,
    limited to the parts of this machine (compatible with its model, or on a bill of
    materials of its failure modes); all stock only when the catalogue names none."""
    stock = Stock.objects.filter(quantity__gt=0).select_related("part", "warehouse")
    if wo.engineer is not None and wo.engineer.warehouse_id is not None:
        stock = stock.filter(warehouse_id=wo.engineer.warehouse_id)
    else:
        stock = stock.filter(warehouse__region=wo.ticket.asset.site.region)
    model_id = wo.ticket.asset.equipment_model_id
    fits = SparePart.objects.filter(
        Q(compatible_models=model_id) | Q(bom_lines__failure_mode__equipment_model=model_id))
    machine = stock.filter(part__in=fits.values("pk")).order_by("part__name")
    if machine.exists():
        stock = machine
    return [("", "—")] + [(str(s.pk), f"{s.part.name} · {s.part.sku} ({s.quantity} in "
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
           photo_form: PhotoForm | None = None, status: int = 200) -> HttpResponse:
    asset = wo.ticket.asset
    return render(request, "field/work_order.html", {
        "wo": wo, "ticket": wo.ticket, "asset": asset, "site": asset.site,
        "offline_base": offline_base(wo),
        "history": access.ticket_list_for_user(user=request.user).filter(asset=asset)
        .exclude(pk=wo.ticket_id).order_by("-opened_at")[:5],
        "complete_form": complete_form or CompleteForm(),
        "parts_form": parts_form or PartsForm(choices=_stock_choices(wo)),
        "record": work_order_record_get(work_order=wo),
        "photos": list(wo.photos.all()),
        "photo_form": photo_form or PhotoForm(),
        "signature": getattr(wo, "signature", None),
        "progress_form": progress_form or ProgressForm(initial={"notes": wo.notes}),
        "sheet_errors": _errors_of(complete_form, parts_form, progress_form, photo_form),
    }, status=status)


def _errors_of(*bound: forms.Form | None) -> list[str]:
    """Every error of the sheet's forms as one list, shown at the top of the page: after a
    refused completion the page opens at the top, far from the form at the bottom."""
    out: list[str] = []
    for form in bound:
        if form is None or not form.is_bound:
            continue
        for name, errors in form.errors.items():
            label = form.fields[name].label if name in form.fields else None
            out += [f"{label}: {e}" if label else str(e) for e in errors]
    return out


@role_required(*FIELD)
def work_order(request: HttpRequest, pk: int) -> HttpResponse:
    return _sheet(request, access.work_order_get_for_user(user=request.user, pk=pk))


@require_POST
@role_required(*FIELD)
@_json_404
def work_order_start(request: HttpRequest, pk: int) -> HttpResponse:
    wo = access.work_order_get_for_user(user=request.user, pk=pk)
    conflict = _conflict(request, wo) if _wants_json(request) else None
    if conflict is not None:
        return conflict
    done = button_action(lambda: work_order_services.work_order_start(
        work_order=wo, actor=request.user))  # type: ignore[arg-type]
    form = done.form
    if done.ok:
        if _wants_json(request):
            return JsonResponse({"status": WorkOrderStatus.IN_PROGRESS,
                                 "message": f"{_label(wo)} started."})
        return HttpResponseRedirect(reverse("field:work-order", args=[wo.pk]))
    if _wants_json(request):
        return _refused(form, wo)
    for error in form.non_field_errors():
        messages.error(request, str(error))
    wo.refresh_from_db()
    return _sheet(request, wo, status=400)


def _ticked(request: HttpRequest, wo: Any) -> list[int]:
    return [i for i in range(len(wo.checklist or [])) if request.POST.get(f"check_{i}")]


def _save_progress(request: HttpRequest, wo: Any, form: forms.Form) -> bool:
    """Checklist ticks and notes from the job sheet, through the field service."""
    notes = form.cleaned_data.get("notes") if "notes" in request.POST else None
    return call_service(form, lambda: field_services.work_order_progress_save(
        work_order=wo, actor=request.user, done=_ticked(request, wo), notes=notes))


@require_POST
@role_required(*FIELD)
@_json_404
def work_order_progress(request: HttpRequest, pk: int) -> HttpResponse:
    """Save ticks and notes as the engineer goes: static/field.js posts here on every change
    (answering JSON); without JavaScript the "Save" button does, and comes back to the sheet."""
    wo = access.work_order_get_for_user(user=request.user, pk=pk)
    form = ProgressForm(request.POST)
    wants_json = _wants_json(request)
    conflict = _conflict(request, wo) if wants_json else None
    if conflict is not None:
        return conflict
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
@_json_404
def work_order_complete(request: HttpRequest, pk: int) -> HttpResponse:
    """Save the ticks and notes, then complete; the report also lists what was ticked.
    Asked for JSON (a completion queued offline), it answers 200, 400 or 409 instead."""
    wo = access.work_order_get_for_user(user=request.user, pk=pk)
    wants_json = _wants_json(request)
    conflict = _conflict(request, wo) if wants_json else None
    if conflict is not None:
        return conflict
    form = CompleteForm(request.POST)
    if (wants_json and wo.status == WorkOrderStatus.COMPLETED and form.is_valid()
            and wo.completion_report.startswith(form.cleaned_data["report"])):
        # The same completion sent again (its answer was lost on a bad connection).
        return JsonResponse({"status": WorkOrderStatus.COMPLETED,
                             "message": f"{_label(wo)} was already completed with this report."})
    parts = PartsForm(request.POST, choices=_stock_choices(wo))
    progress = ProgressForm(request.POST)
    # Ticks and notes are kept first, in their own transaction: a refused completion (no
    # stock, say) must not lose what the engineer recorded.
    if wo.status == WorkOrderStatus.IN_PROGRESS and not (
            progress.is_valid() and _save_progress(request, wo, progress)):
        if wants_json:
            return _refused(progress, wo)
        return _sheet(request, wo, complete_form=form, parts_form=parts, progress_form=progress,
                      status=400)
    wo.refresh_from_db()
    if (form.is_valid() and parts.is_valid() and form.cleaned_data["signature"]
            and wo.status == WorkOrderStatus.IN_PROGRESS
            and not call_service(form, lambda: evidence_services.work_order_sign(
                work_order=wo, actor=request.user, signed_by=form.cleaned_data["signed_by"],
                data_url=form.cleaned_data["signature"]))):
        if wants_json:
            return _refused(form, wo)
        return _sheet(request, wo, complete_form=form, parts_form=parts, status=400)
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
            if wants_json:
                return JsonResponse({"status": WorkOrderStatus.COMPLETED,
                                     "message": f"{_label(wo)} completed."})
            messages.success(request, f"{_label(wo)} completed.")
            return HttpResponseRedirect(reverse("field:today"))
    if wants_json:
        if not parts.is_valid():
            return JsonResponse({"errors": parts.errors.get_json_data()}, status=400)
        return _refused(form, wo)
    return _sheet(request, wo, complete_form=form, parts_form=parts, status=400)


@require_POST
@role_required(*FIELD)
def work_order_photo(request: HttpRequest, pk: int) -> HttpResponse:
    """Add a photo taken with the phone's camera to a job in progress (checked and
    re-encoded by the service; a refusal is listed at the top of the sheet)."""
    wo = access.work_order_get_for_user(user=request.user, pk=pk)
    form = PhotoForm(request.POST, request.FILES)
    if upload_form_valid(request, form, "image"):
        upload = form.cleaned_data["image"]
        if upload.size > MAX_PHOTO_BYTES:
            form.add_error("image", f"A photo may be at most {MAX_PHOTO_BYTES // 2**20} MB.")
        elif call_service(form, lambda: evidence_services.work_order_photo_add(
                work_order=wo, actor=request.user, data=upload.read(),
                caption=form.cleaned_data["caption"])):
            messages.success(request, "Photo added.")
            return HttpResponseRedirect(reverse("field:work-order", args=[wo.pk]) + "#photos")
    return _sheet(request, wo, photo_form=form, status=400)


def _stored_file(field: Any, content_type: str, name: str) -> FileResponse:
    try:
        handle = field.open("rb")
    except FileNotFoundError:
        raise Http404("The file is missing; the service desk has been told.") from None
    response = FileResponse(handle, content_type=content_type, filename=name)
    response["Cache-Control"] = "private, max-age=3600"
    return response


@role_required(*FIELD)
def work_order_photo_file(request: HttpRequest, pk: int, photo: int) -> FileResponse:
    """A job's photo, for whoever may see the work order (its engineer, the office)."""
    wo = access.work_order_get_for_user(user=request.user, pk=pk)
    found = WorkOrderPhoto.objects.filter(work_order=wo, pk=photo).first()
    if found is None:
        raise Http404("No such photo on this work order.")
    return _stored_file(found.image, "image/jpeg", f"{_label(wo)}-photo-{found.pk}.jpg")


@role_required(*FIELD)
def work_order_signature_file(request: HttpRequest, pk: int) -> FileResponse:
    wo = access.work_order_get_for_user(user=request.user, pk=pk)
    signature = getattr(wo, "signature", None)
    if signature is None:
        raise Http404("This work order is not signed.")
    return _stored_file(signature.image, "image/png", f"{_label(wo)}-signature.png")


def service_report_response(request: HttpRequest, wo: Any) -> HttpResponse:
    """The service report of a completed job as a PDF download (any role that may see the
    work order; the caller has checked that)."""
    if wo.status != WorkOrderStatus.COMPLETED:
        raise Http404("The service report exists once the job is completed.")
    response = HttpResponse(service_report_pdf(work_order=wo), content_type="application/pdf")
    response["Content-Disposition"] = (
        f'attachment; filename="service-report-{_label(wo)}.pdf"')
    return response


@role_required(*FIELD)
def work_order_report(request: HttpRequest, pk: int) -> HttpResponse:
    return service_report_response(request, access.work_order_get_for_user(
        user=request.user, pk=pk))
