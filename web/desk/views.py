"""Service desk pages: dashboard, episode queue, tickets and dispatch, accounts, assets,
offers, unclaimed devices. Reads go through the guarded selectors, writes through one
service each."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseRedirect,
    QueryDict,
    StreamingHttpResponse,
)
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from service_crm import conf
from service_crm.models import SalesOrder, WorkOrderPhoto
from service_crm.models.choices import (
    AlertState,
    EpisodeStatus,
    OfferStatus,
    Severity,
    TicketStatus,
)
from service_crm.selectors import access
from service_crm.selectors import dispatch as dispatch_selectors
from service_crm.selectors import offers as offer_selectors
from service_crm.selectors import opportunities as opportunity_selectors
from service_crm.selectors import reports as report_selectors
from service_crm.selectors import search as search_selectors
from service_crm.selectors.access import STAFF_ROLES, Role
from service_crm.selectors.accounts import contract_list_renewal_opportunities
from service_crm.selectors.dashboard import dashboard_get
from service_crm.selectors.work_orders import work_order_record_get
from service_crm.services import contracts as contract_services
from service_crm.services import devices as device_services
from service_crm.services import episodes as episode_services
from service_crm.services import offers as offer_services
from service_crm.services import privacy as privacy_services
from service_crm.services import tickets as ticket_services
from service_crm.services import work_orders as work_order_services
from web.desk import charts, lists
from web.desk.classify import ClassifyForm, classify_context
from web.forms import (
    ContractDocumentForm,
    DeviceClaimForm,
    OfferDiscountForm,
    PauseForm,
    ScheduleForm,
    TicketTransitionForm,
    button_action,
    call_service,
)
from web.roles import role_required
from web.uploads import upload_form_valid

DESK = (Role.ADMIN, Role.DESK_AGENT, Role.SERVICE_MANAGER)
STAFF = tuple(STAFF_ROLES)
# Offers are the sales side's too: every office role drafts, prices and sends them (approval
# of a big discount stays with managers, checked by the service).
OFFER = STAFF
PAGE = 50
ACCOUNT_TIMELINE = 50  # latest interactions on the account page
DISPATCH_DAYS = 7


def _page(request: HttpRequest, items: Any) -> Any:
    return Paginator(items, PAGE).get_page(request.GET.get("page"))


class BadFilter(ValueError):
    """A list filter's value that the list does not know (``?status=bogus``)."""


def _choice(request: HttpRequest, name: str, choices: list[tuple[str, str]],
            default: str) -> str:
    """The filter `name` from the query string, one of `choices` (value, label) or `default`;
    anything else raises BadFilter naming the values allowed, rather than quietly listing
    everything as if no filter had been asked for."""
    value = request.GET.get(name, default)
    allowed = [v for v, _ in choices]
    if value != default and value not in allowed:
        raise BadFilter(f"Unknown {name} \u201c{value[:40]}\u201d: choose one of "
                        + ", ".join(a for a in allowed if a) + ".")
    return value


def _bad_filter(request: HttpRequest, error: BadFilter, *, title: str,
                url_name: str) -> HttpResponse:
    return render(request, "desk/bad_filter.html", {
        "error": str(error), "title": title, "list_url": reverse(url_name)}, status=400)


def status_list(request: HttpRequest, qs: Any, *, choices: list[tuple[str, str]],
                template: str, title: str, url_name: str,
                prepare: Callable[[Any], Any] = lambda qs: qs) -> HttpResponse:
    """A desk list with an optional ``?status=`` filter (one of `choices`, else a 400 page
    naming the values allowed), paged; `prepare` adds what the page's rows need."""
    try:
        status = _choice(request, "status", choices, "")
    except BadFilter as e:
        return _bad_filter(request, e, title=title, url_name=url_name)
    if status:
        qs = qs.filter(status=status)
    return render(request, template, {
        "page": _page(request, prepare(qs)), "status": status, "statuses": choices})


def _dashboard_context(request: HttpRequest) -> dict[str, Any]:
    d = dashboard_get(user=request.user, now=timezone.now())
    fleet = report_selectors.fleet_health_get(user=request.user)
    return {"d": d, "fleet": fleet, "fleet_chart": charts.fleet_chart(fleet),
            "severity_chart": charts.severity_chart(d.episodes_by_severity)}


@role_required(*STAFF)
def dashboard(request: HttpRequest) -> HttpResponse:
    return render(request, "desk/dashboard.html", {
        **_dashboard_context(request),
        "poll_seconds": conf.dashboard_poll_s()})


@role_required(*STAFF)
def dashboard_panel(request: HttpRequest) -> HttpResponse:
    """The dashboard's figures alone, fetched every few seconds by static/poll.js."""
    return render(request, "desk/_dashboard_panel.html", _dashboard_context(request))


@role_required(*STAFF)
def episode_list(request: HttpRequest) -> HttpResponse:
    qs = access.episode_list_for_user(user=request.user)
    try:
        status = _choice(request, "status", EpisodeStatus.choices, "live")
        severity = _choice(request, "severity", Severity.choices, "")
    except BadFilter as e:
        return _bad_filter(request, e, title="Episode queue", url_name="desk:episodes")
    if status == "live":
        qs = qs.filter(status__in=[EpisodeStatus.OPEN, EpisodeStatus.WATCHING])
    else:
        qs = qs.filter(status=status)
    if severity:
        qs = qs.filter(peak_severity=severity)
    return render(request, "desk/episode_list.html", {
        "page": _page(request, qs.order_by("-last_alert_at")), "status": status,
        "severity": severity, "statuses": EpisodeStatus.choices, "severities": Severity.choices})


@role_required(*STAFF)
def episode_detail(request: HttpRequest, pk: int, *, offer_error: str = "",
                   status: int = 200, classify_form: ClassifyForm | None = None,
                   input_error: str = "") -> HttpResponse:
    episode = access.episode_get_for_user(user=request.user, pk=pk)
    alerts = list(episode.alerts.order_by("-at")[:50])
    return render(request, "desk/episode_detail.html", {
        "episode": episode, "alerts": alerts,
        "can_classify": access.has_role(user=request.user, roles=set(DESK)),
        **classify_context(episode, alerts, classify_form),
        "tickets": episode.tickets.order_by("-opened_at"),
        "offers": access.offer_list_for_user(user=request.user).filter(episode=episode),
        "can_offer": access.has_role(user=request.user, roles=set(OFFER)),
        "offer_error": offer_error, "input_error": input_error,
        "markers": _markers(request, episode.asset, episode=episode)}, status=status)


@require_POST
@role_required(*OFFER)
def episode_offer_create(request: HttpRequest, pk: int) -> HttpResponse:
    """Draft an offer for the episode's repair (parts, labour, a contract when uncovered) and
    open it, to adjust the discount and send it."""
    episode = access.episode_get_for_user(user=request.user, pk=pk)
    done = button_action(lambda: offer_services.offer_create_for_episode(
        episode=episode, actor=request.user))  # type: ignore[arg-type]
    if done.result is not None:
        messages.success(request, f"Draft offer {done.result.number} prepared: check it and "
                                  "send it to the customer.")
        return HttpResponseRedirect(reverse("desk:offer", args=[done.result.pk]))
    return episode_detail(request, pk, offer_error=" ".join(
        str(e) for e in done.form.non_field_errors()), status=400)


@require_POST
@role_required(*DESK)
def episode_classify(request: HttpRequest, pk: int) -> HttpResponse:
    """Name the failure mode of an episode led by metrics the equipment model does not name
    (:mod:`web.desk.classify`); a refusal is shown by its field (400)."""
    episode = access.episode_get_for_user(user=request.user, pk=pk)
    form = ClassifyForm(request.POST, episode=episode)
    done: list[episode_services.Classified] = []
    if form.is_valid() and call_service(form, lambda: done.append(
            episode_services.episode_classify(
                actor=request.user, episode=episode, code=form.cleaned_data["failure_mode"],
                remember=form.cleaned_data["remember"]))):
        result = done[0]
        note = f"Episode {episode.pk} classified as {form.cleaned_data['failure_mode']}"
        if result.merged:
            note += f" and merged into episode {result.episode.pk}"
        if result.remembered:
            note += f"; saved for {', '.join(result.remembered)} in the equipment model"
        messages.success(request, note + ".")
        return HttpResponseRedirect(reverse("desk:episode", args=[result.episode.pk]))
    return episode_detail(request, pk, classify_form=form, status=400)


@require_POST
@role_required(*DESK)
def episode_not_a_fault(request: HttpRequest, pk: int) -> HttpResponse:
    """Not a fault: the episode's leading metrics are operating inputs, saved so into the
    equipment model (:func:`service_crm.services.episodes.episode_not_a_fault`)."""
    episode = access.episode_get_for_user(user=request.user, pk=pk)
    done = button_action(lambda: episode_services.episode_not_a_fault(
        actor=request.user, episode=episode))
    if done.result is not None:
        messages.success(request, f"Episode {episode.pk} closed as not a fault; "
                                  f"{', '.join(done.result.remembered)} saved as an operating "
                                  "input of the equipment model. Its tickets stay open for you "
                                  "to close.")
        return HttpResponseRedirect(reverse("desk:episode", args=[episode.pk]))
    return episode_detail(request, pk, status=400, input_error=" ".join(
        str(e) for e in done.form.non_field_errors()))


@role_required(*STAFF)
def alert_list(request: HttpRequest) -> HttpResponse:
    """Every detector alert the user may see, newest first, by state and severity."""
    qs = access.alert_list_for_user(user=request.user).select_related(
        "asset__site__account", "episode")
    try:
        state = _choice(request, "state", AlertState.choices, "")
        severity = _choice(request, "severity", Severity.choices, "")
    except BadFilter as e:
        return _bad_filter(request, e, title="Alerts", url_name="desk:alerts")
    if state:
        qs = qs.filter(state=state)
    if severity:
        qs = qs.filter(severity=severity)
    unclassified = request.GET.get("unclassified") == "1"
    if unclassified:
        qs = qs.filter(classified=False)
    page = _page(request, qs.order_by("-at", "-pk"))
    for a in page:  # the strongest piece of evidence, for the row
        ev = [e for e in (a.evidence or []) if isinstance(e, dict)]
        a.top_evidence = max(ev, key=lambda e: e.get("score") or 0, default=None)
    return render(request, "desk/alert_list.html", {
        "page": page, "state": state, "severity": severity, "unclassified": unclassified,
        "states": AlertState.choices, "severities": Severity.choices})


@role_required(*STAFF)
def search(request: HttpRequest) -> HttpResponse:
    """One box for serials, device ids, accounts and T-/WO-/Q- numbers; a single match opens
    its page."""
    query = request.GET.get("q", "")[:100]
    result = search_selectors.desk_search(user=request.user, query=query)
    if result.total == 1:
        for items, name in ((result.assets, "desk:asset"), (result.accounts, "desk:account"),
                            (result.tickets, "desk:ticket"), (result.offers, "desk:offer"),
                            (result.work_orders, "desk:work-order")):
            if items:
                return HttpResponseRedirect(reverse(name, args=[items[0].pk]))
    return render(request, "desk/search.html", {"result": result, "q": result.query})


@role_required(*STAFF)
def work_order_detail(request: HttpRequest, pk: int) -> HttpResponse:
    wo = access.work_order_get_for_user(user=request.user, pk=pk)
    return render(request, "desk/work_order_detail.html", {
        "wo": wo, "label": f"WO-{wo.pk:06d}", "record": work_order_record_get(work_order=wo),
        "photos": list(WorkOrderPhoto.objects.filter(work_order=wo)),
        "signature": getattr(wo, "signature", None)})


@role_required(*STAFF)
def ticket_list(request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
    qs = access.ticket_list_for_user(user=request.user)
    try:
        status = _choice(request, "status", TicketStatus.choices, "open")
        sort = _choice(request, "sort", lists.TICKET_SORT_CHOICES, "due")
        export = _choice(request, "format", [("csv", "CSV")], "")
    except BadFilter as e:
        return _bad_filter(request, e, title="Tickets", url_name="desk:tickets")
    qs = qs.open() if status == "open" else qs.filter(status=status)
    qs = qs.order_by(*lists.TICKET_SORTS[sort][1])
    if export == "csv":
        return lists.tickets_csv(qs)
    return render(request, "desk/ticket_list.html", {
        "page": _page(request, qs.select_related("account")), "status": status,
        "statuses": TicketStatus.choices, "sort": sort, "sorts": lists.TICKET_SORT_CHOICES,
        "list_query": urlencode({"status": status, "sort": sort}),
        "bulk_targets": lists.BULK_TARGETS,
        "can_bulk": access.has_role(user=request.user, roles=set(DESK))})


def _ticket_context(request: HttpRequest, ticket: Any, **forms: Any) -> dict[str, Any]:
    work_orders = list(ticket.work_orders.select_related("engineer").order_by("pk"))
    schedulable = next((w for w in work_orders if w.status in ("proposed", "scheduled")), None)
    initial = {}
    if schedulable is not None:
        initial = {"engineer": schedulable.engineer_id, "start": schedulable.scheduled_start,
                   "end": schedulable.scheduled_end}
    return {
        "ticket": ticket, "work_orders": work_orders, "schedulable": schedulable,
        "transition_form": forms.get("transition_form") or TicketTransitionForm(),
        "pause_form": forms.get("pause_form") or PauseForm(),
        "schedule_form": forms.get("schedule_form") or ScheduleForm(
            initial=initial, region=ticket.asset.site.region,
            resolution_due=ticket.resolution_due),
        "timeline": ticket.interactions.order_by("-at", "-pk")[:50],
        "can_act": bool(access.scope_for(user=request.user).roles & set(DESK)),
    }


@role_required(*STAFF)
def ticket_detail(request: HttpRequest, pk: int) -> HttpResponse:
    ticket = access.ticket_get_for_user(user=request.user, pk=pk)
    return render(request, "desk/ticket_detail.html", _ticket_context(request, ticket))


def _back_to_ticket(ticket_pk: int) -> HttpResponse:
    return HttpResponseRedirect(reverse("desk:ticket", args=[ticket_pk]))


def _ticket_action(request: HttpRequest, pk: int, *, form: forms.Form, form_key: str,
                   service: Callable[[Any, Any], object], done: str = "") -> HttpResponse:
    """Validate ``form``, call one ticket service, and either go back to the ticket or show
    the form again with the service's objection by its field (400)."""
    ticket = access.ticket_get_for_user(user=request.user, pk=pk)
    if form.is_valid() and call_service(form, lambda: service(ticket, form.cleaned_data)):
        if done:
            messages.success(request, done.format(ticket=ticket, **form.cleaned_data))
        return _back_to_ticket(ticket.pk)
    return render(request, "desk/ticket_detail.html",
                  _ticket_context(request, ticket, **{form_key: form}), status=400)


@require_POST
@role_required(*DESK)
def ticket_transition(request: HttpRequest, pk: int) -> HttpResponse:
    actor: Any = request.user
    return _ticket_action(
        request, pk, form=TicketTransitionForm(request.POST), form_key="transition_form",
        service=lambda ticket, data: ticket_services.ticket_transition(
            ticket=ticket, to=data["to"], actor=actor, outcome=data["outcome"]),
        done="{ticket.number} moved to {to}.")


@require_POST
@role_required(*DESK)
def ticket_pause(request: HttpRequest, pk: int) -> HttpResponse:
    actor: Any = request.user
    return _ticket_action(
        request, pk, form=PauseForm(request.POST), form_key="pause_form",
        service=lambda ticket, data: ticket_services.ticket_pause(
            ticket=ticket, reason=data["reason"], actor=actor))


@require_POST
@role_required(*DESK)
def ticket_resume(request: HttpRequest, pk: int) -> HttpResponse:
    actor: Any = request.user
    return _ticket_action(
        request, pk, form=forms.Form({}), form_key="pause_form",
        service=lambda ticket, data: ticket_services.ticket_resume(ticket=ticket, actor=actor))


@require_POST
@role_required(*DESK)
def work_order_schedule(request: HttpRequest, pk: int) -> HttpResponse:
    """Dispatch: book an engineer for the work order's window (from the ticket, or from the
    board with ``board`` set to the board's query string to go back to)."""
    wo = access.work_order_get_for_user(user=request.user, pk=pk)
    site_ticket = wo.ticket
    form = ScheduleForm(request.POST, region=site_ticket.asset.site.region,
                        resolution_due=site_ticket.resolution_due)
    booked = form.is_valid() and call_service(
        form, lambda: work_order_services.work_order_schedule(
            work_order=wo, engineer=form.cleaned_data["engineer"],
            start=form.cleaned_data["start"], end=form.cleaned_data["end"],
            actor=request.user))  # type: ignore[arg-type]
    if "board" in request.POST:
        back = reverse("desk:dispatch") + "?" + urlencode(
            {k: v for k, v in QueryDict(request.POST["board"]).items()
             if k in ("start", "view", "region", "skill")})
        if booked:
            messages.success(request, f"WO-{wo.pk:06d} booked with "
                                      f"{form.cleaned_data['engineer']}.")
        else:
            messages.error(request, f"WO-{wo.pk:06d} not booked: " + " ".join(
                str(e) for errs in form.errors.values() for e in errs))
        return HttpResponseRedirect(back)
    if booked:
        messages.success(request, f"{wo} scheduled with {form.cleaned_data['engineer']}.")
        return _back_to_ticket(wo.ticket_id)
    ticket = access.ticket_get_for_user(user=request.user, pk=wo.ticket_id)
    return render(request, "desk/ticket_detail.html",
                  _ticket_context(request, ticket, schedule_form=form), status=400)


@role_required(*STAFF)
def account_detail(request: HttpRequest, pk: int, *, failed_contract: int | None = None,
                   failed_form: ContractDocumentForm | None = None,
                   status: int = 200) -> HttpResponse:
    account = access.account_get_for_user(user=request.user, pk=pk)
    _with_health(request, [account])
    # A big account has hundreds of assets: page them (PAGE per page, ?page=N) and keep the
    # timeline to the latest ACCOUNT_TIMELINE entries, so the page costs the same for any size.
    assets = access.asset_list_for_user(user=request.user).filter(
        site__account=account).select_related("parent").annotate(
        n_children=Count("children")).order_by("serial", "pk")
    return render(request, "desk/account_detail.html", {
        "account": account,
        "page": _page(request, assets),
        "contracts": access.contract_list_for_user(user=request.user).filter(
            account=account).prefetch_related("documents"),
        "can_upload": access.has_role(user=request.user, roles=set(DESK)),
        "failed_contract": failed_contract, "failed_form": failed_form,
        "tickets": access.ticket_list_for_user(user=request.user).filter(
            account=account).order_by("-opened_at")[:20],
        "offers": access.offer_list_for_user(user=request.user).filter(account=account)[:20],
        "opportunities": opportunity_selectors.opportunity_list_for_user(
            user=request.user).filter(account=account).order_by("-created_at")[:20],
        "timeline": access.interaction_list_for_account(user=request.user,
                                                        account=account)[:ACCOUNT_TIMELINE],
        "timeline_limit": ACCOUNT_TIMELINE,
        "contacts": access.contact_list_for_user(user=request.user).filter(account=account),
    }, status=status)


@require_POST
@role_required(*DESK)
def contact_erase(request: HttpRequest, pk: int) -> HttpResponse:
    """Erase a contact's personal data on their request (GDPR art. 17): anonymised everywhere,
    business records kept, audited. The form asks the agent to type the contact's number."""
    contact = access.contact_get_for_user(user=request.user, pk=pk)
    if request.POST.get("confirm", "").strip() != str(contact.pk):
        messages.error(request, f"Type the contact number {contact.pk} to confirm the erasure.")
    else:
        counts = privacy_services.contact_erase(contact=contact, actor=request.user)
        messages.success(request, f"Personal data of contact #{contact.pk} erased "
                                  f"({', '.join(f'{k}: {v}' for k, v in counts.items() if v)})."
                         if counts else f"Contact #{contact.pk} was already erased.")
    return HttpResponseRedirect(reverse("desk:account", args=[contact.account_id]))


@require_POST
@role_required(*DESK)
def contract_document_add(request: HttpRequest, pk: int) -> HttpResponse:
    """Upload a PDF for a contract; a refusal (not a PDF, too big) is shown next to its field
    on the account page."""
    contract = access.contract_get_for_user(user=request.user, pk=pk)
    form = ContractDocumentForm(request.POST, request.FILES)
    if upload_form_valid(request, form, "file") and call_service(
            form, lambda: contract_services.contract_document_add(
                contract=contract, title=form.cleaned_data["title"],
                file=form.cleaned_data["file"], actor=request.user)):
        messages.success(request, f"Document added to {contract.number}.")
        return HttpResponseRedirect(reverse("desk:account", args=[contract.account_id]))
    return account_detail(request, contract.account_id, failed_contract=contract.pk,
                          failed_form=form, status=400)


@role_required(*STAFF)
def account_list(request: HttpRequest) -> HttpResponse:
    qs = access.account_list_for_user(user=request.user)
    q = request.GET.get("q", "").strip()
    if q:
        qs = qs.filter(name__icontains=q)
    page = _page(request, qs)
    _with_health(request, list(page))
    return render(request, "desk/account_list.html", {"page": page, "q": q})


def _with_health(request: HttpRequest, accounts: list[Any]) -> None:
    """Give each account `.risk` (signals, reasons) and `.health` (100 - risk score): the one
    definition the at-risk report uses too, not the stored figure housekeeping refreshes."""
    risks = report_selectors.account_health_get_many(
        user=request.user, now=timezone.now(), account_ids=[a.pk for a in accounts])
    for a in accounts:
        a.risk = risks.get(a.pk)
        a.health = a.risk.health if a.risk is not None else None


@role_required(*STAFF)
def asset_list(request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
    """Every asset the user may see, by serial; `q` narrows by serial, device id, account or
    site name."""
    qs = access.asset_list_for_user(user=request.user)
    q = request.GET.get("q", "").strip()[:100]
    if q:
        qs = qs.filter(Q(serial__icontains=q) | Q(devices__device_key__icontains=q)
                       | Q(site__account__name__icontains=q) | Q(site__name__icontains=q)
                       ).distinct()
    if request.GET.get("format") == "csv":
        return lists.assets_csv(qs.order_by("serial", "pk"))
    return render(request, "desk/asset_list.html", {
        "page": _page(request, qs.order_by("serial", "pk")), "q": q})


@role_required(*STAFF)
def asset_detail(request: HttpRequest, pk: int) -> HttpResponse:
    asset = access.asset_get_for_user(user=request.user, pk=pk)
    visible = access.asset_list_for_user(user=request.user)
    return render(request, "desk/asset_detail.html", {
        "asset": asset, "devices": asset.devices.all(),
        # The line it belongs to and its machines, as far as this user may see them.
        "parent": visible.filter(pk=asset.parent_id).first() if asset.parent_id else None,
        "children": visible.filter(parent=asset).order_by("serial"),
        "episodes": access.episode_list_for_user(user=request.user).filter(asset=asset)[:20],
        "tickets": access.ticket_list_for_user(user=request.user).filter(
            asset=asset).order_by("-opened_at")[:20],
        "markers": _markers(request, asset),
        "age": opportunity_selectors.asset_age_get(asset=asset, on=timezone.now().date()),
        "opportunities": opportunity_selectors.opportunity_list_for_user(
            user=request.user).filter(asset=asset).order_by("-created_at")[:20],
        "can_release": access.has_role(user=request.user, roles=set(DESK)),
    })


def _markers(request: HttpRequest, asset: Any, *, episode: Any = None) -> list[dict[str, Any]]:
    """Alert and work-order times for the chart, newest 200 of each (of one episode's alerts
    and tickets when `episode` is given)."""
    alerts = access.alert_list_for_user(user=request.user).filter(asset=asset)
    wos = access.work_order_list_for_user(user=request.user).filter(
        ticket__asset=asset, scheduled_start__isnull=False)
    if episode is not None:
        alerts, wos = alerts.filter(episode=episode), wos.filter(ticket__episode=episode)
    alerts, wos = alerts.order_by("-opened_at")[:200], wos.order_by("-scheduled_start")[:200]
    out = [{"t": a.opened_at.timestamp(), "kind": "alert", "label": a.failure_mode_code}
           for a in alerts]
    out += [{"t": w.scheduled_start.timestamp(), "kind": "work_order", "label": str(w)}
            for w in wos if w.scheduled_start is not None]
    return out


@role_required(*STAFF)
def offer_list(request: HttpRequest) -> HttpResponse:
    return status_list(request, access.offer_list_for_user(user=request.user),
                       choices=OfferStatus.choices, template="desk/offer_list.html",
                       title="Offers", url_name="desk:offers")


def _offer_page(request: HttpRequest, offer: Any, *, status: int = 200,
                **forms_: Any) -> HttpResponse:
    lines = list(offer.lines.all())
    return render(request, "desk/offer_detail.html", {
        "offer": offer, "lines": lines,
        "money": offer_selectors.offer_totals_get(offer=offer, lines=lines),
        "order": SalesOrder.objects.filter(offer=offer).first(),
        "recipients": offer.sent_to.all(),
        "discount_form": forms_.get("discount_form") or OfferDiscountForm(
            initial={"discount_pct": offer.discount_pct}),
        "action_form": forms_.get("action_form"),
        "can_act": access.has_role(user=request.user, roles=set(OFFER)),
        "can_approve": access.has_role(user=request.user,
                                       roles={Role.ADMIN, Role.SERVICE_MANAGER})}, status=status)


@role_required(*STAFF)
def offer_detail(request: HttpRequest, pk: int) -> HttpResponse:
    offer = access.offer_get_for_user(user=request.user, pk=pk)
    return _offer_page(request, offer)


@require_POST
@role_required(*OFFER)
def offer_action(request: HttpRequest, pk: int, verb: str) -> HttpResponse:
    """discount / request-approval / approve / send, each one service call."""
    offer = access.offer_get_for_user(user=request.user, pk=pk)
    actor: Any = request.user
    if verb == "discount":
        discount_form = OfferDiscountForm(request.POST)
        if discount_form.is_valid() and call_service(
                discount_form, lambda: offer_services.offer_set_discount(
                    offer=offer, discount_pct=discount_form.cleaned_data["discount_pct"],
                    actor=actor)):
            messages.success(request, f"{offer.number}: discount set to "
                                      f"{discount_form.cleaned_data['discount_pct']} %.")
            return HttpResponseRedirect(reverse("desk:offer", args=[offer.pk]))
        offer.refresh_from_db()
        return _offer_page(request, offer, discount_form=discount_form, status=400)
    services = {
        "request-approval": lambda: offer_services.offer_request_approval(offer=offer,
                                                                          actor=actor),
        "approve": lambda: offer_services.offer_approve(offer=offer, approver=actor),
        "send": lambda: offer_services.offer_send(offer=offer, actor=actor),
    }
    if verb not in services:
        return HttpResponse(status=404)
    if verb == "approve" and not access.has_role(user=request.user,
                                                 roles={Role.ADMIN, Role.SERVICE_MANAGER}):
        return HttpResponse("Only a service manager approves offers.", status=403)
    done = button_action(services[verb])
    if done.ok:
        messages.success(request, {
            "request-approval": f"{offer.number} is waiting for a manager's approval.",
            "approve": f"{offer.number}: discount approved.",
            "send": f"{offer.number} sent to the customer."}[verb])
        return HttpResponseRedirect(reverse("desk:offer", args=[offer.pk]))
    offer.refresh_from_db()
    return _offer_page(request, offer, action_form=done.form, status=400)


def _unclaimed_page(request: HttpRequest, *, failed_key: str = "",
                   failed_form: DeviceClaimForm | None = None, status: int = 200) -> HttpResponse:
    rows = access.device_list_for_user(user=request.user, unclaimed=True, limit=PAGE * 20)
    page = _page(request, rows)
    return render(request, "desk/devices_unclaimed.html", {
        "page": page, "failed_key": failed_key, "failed_form": failed_form,
        # Claimed by someone else meanwhile, the device is no longer listed: say so on top.
        "failed_unlisted": bool(failed_key) and all(r.device_key != failed_key for r in page),
        "can_claim": access.has_role(user=request.user, roles=set(DESK))}, status=status)


@role_required(*STAFF)
def devices_unclaimed(request: HttpRequest) -> HttpResponse:
    return _unclaimed_page(request)


@require_POST
@role_required(*DESK)
def device_claim(request: HttpRequest, device_key: str) -> HttpResponse:
    """Attach an unclaimed device to the asset with the serial typed in; a refusal is shown
    next to that device's field."""
    device = access.device_get_for_user(user=request.user, device_key=device_key)
    form = DeviceClaimForm(request.POST)
    if form.is_valid():
        serial = form.cleaned_data["asset"].strip()
        asset = access.asset_list_for_user(user=request.user).filter(
            serial__iexact=serial).first()
        if asset is None:
            form.add_error("asset", f"No asset with serial {serial!r}.")
        elif call_service(form, lambda: device_services.device_claim(
                device_key=device.device_key, asset=asset, actor=request.user)):
            messages.success(request, f"{device.device_key} attached to {asset.serial}.")
            return HttpResponseRedirect(reverse("desk:asset", args=[asset.pk]))
    return _unclaimed_page(request, failed_key=device.device_key, failed_form=form, status=400)


@require_http_methods(["GET", "POST"])
@role_required(*DESK)
def device_release(request: HttpRequest, device_key: str) -> HttpResponse:
    """Detach a device from its asset (wrongly attached, or the controller was swapped).
    Asked first: GET (or a POST without ``confirm``) shows what detaching does."""
    device = access.device_get_for_user(user=request.user, device_key=device_key)
    if request.method == "GET" or request.POST.get("confirm") != "yes":
        asset = (access.asset_get_for_user(user=request.user, pk=device.asset_id)
                 if device.asset_id is not None else None)
        return render(request, "desk/device_release_confirm.html",
                      {"device": device, "asset": asset})
    done = button_action(lambda: device_services.device_release(
        device_key=device.device_key, actor=request.user))
    if done.result is not None:
        messages.success(request, f"{device.device_key} detached; it is listed as unclaimed.")
        return HttpResponseRedirect(reverse("desk:asset", args=[done.result.pk]))
    for error in done.form.non_field_errors():
        messages.error(request, str(error))
    return HttpResponseRedirect(reverse("desk:devices-unclaimed"))


@role_required(*STAFF)
def dispatch_board(request: HttpRequest) -> HttpResponse:
    """Engineers by UTC day (?view=day or week from ?start=YYYY-MM-DD) with their bookings,
    and the jobs waiting for an engineer, narrowed by ?region= and ?skill=. Bookings after
    the ticket's resolution deadline, overlapping, during an absence or without the skill
    are flagged; a waiting job is booked from the board with the engineers who fit it."""
    regions, skills = dispatch_selectors.dispatch_filter_choices()
    today = timezone.now().date()
    try:
        view = _choice(request, "view", [("day", "Day"), ("week", "Week")], "week")
        region = _choice(request, "region", [(r, r) for r in regions], "")
        skill = _choice(request, "skill", [(s, s) for s in skills], "")
        raw_start = request.GET.get("start", "")
        try:
            start = dt.date.fromisoformat(raw_start) if raw_start else today
        except ValueError:
            raise BadFilter(f"Unknown start \u201c{raw_start[:40]}\u201d: give a date as "
                            "YYYY-MM-DD.") from None
        if not dt.date(2000, 1, 1) <= start <= dt.date(2999, 12, 31):
            raise BadFilter("The start date must be between 2000 and 2999.")
    except BadFilter as e:
        return _bad_filter(request, e, title="Dispatch board", url_name="desk:dispatch")
    days = 1 if view == "day" else DISPATCH_DAYS
    board = dispatch_selectors.dispatch_board_get(user=request.user, start=start, days=days,
                                                  region=region, skill=skill)
    here = {"view": view, "region": region, "skill": skill, "start": start.isoformat()}
    step = dt.timedelta(days=days)
    return render(request, "desk/dispatch.html", {
        "board": board, "view": view, "region": region, "skill": skill, "start": start,
        "query": urlencode(here),
        "prev": urlencode({**here, "start": (start - step).isoformat()}),
        "next": urlencode({**here, "start": (start + step).isoformat()}),
        "today": urlencode({**here, "start": today.isoformat()}),
        "can_book": access.has_role(user=request.user, roles=set(DESK))})


@role_required(*STAFF)
def renewals(request: HttpRequest) -> HttpResponse:
    """Contracts ending within 90 days and not renewed, least healthy accounts first (health
    as on every desk page); contracts that renew automatically are listed apart, as the
    portal tells the customer they renew."""
    found = contract_list_renewal_opportunities(now=timezone.now())
    accounts = {o.contract.account_id: o.contract.account for o in found}
    _with_health(request, list(accounts.values()))
    rows = [o for o in found if not o.contract.auto_renew]
    def least_healthy_first(o: Any) -> tuple[int, dt.date, int]:
        health = getattr(o.contract.account, "health", None)
        return (101 if health is None else health, o.contract.end, o.contract.pk)

    rows.sort(key=least_healthy_first)
    open_offers = {o.renews_id: o for o in access.offer_list_for_user(user=request.user).filter(
        renews_id__in=[r.contract.pk for r in rows],
        status__in=offer_services.OPEN_OFFER)}
    return render(request, "desk/renewals.html", {
        "opportunities": [(r, open_offers.get(r.contract.pk)) for r in rows],
        "can_offer": access.has_role(user=request.user, roles=set(OFFER)),
        "automatic": [o for o in found if o.contract.auto_renew]})


@require_POST
@role_required(*OFFER)
def contract_renewal_offer(request: HttpRequest, pk: int) -> HttpResponse:
    """Draft the renewal offer of a contract (another year at its price) and open it."""
    contract = access.contract_get_for_user(user=request.user, pk=pk)
    done = button_action(lambda: offer_services.offer_create_renewal(
        contract=contract, actor=request.user))  # type: ignore[arg-type]
    if done.result is not None:
        messages.success(request, f"Renewal offer {done.result.number} drafted for "
                                  f"{contract.number}: check it and send it.")
        return HttpResponseRedirect(reverse("desk:offer", args=[done.result.pk]))
    for error in done.form.non_field_errors():
        messages.error(request, str(error))
    return HttpResponseRedirect(reverse("desk:renewals"))


@role_required(*STAFF)
def reports(request: HttpRequest) -> HttpResponse:
    """SLA compliance per week (90 days), MTBF per equipment model (365 days), alert
    precision per detector and the accounts at risk, each a chart over a table; the
    definitions are in :mod:`service_crm.selectors.reports` and on the page."""
    now = timezone.now()
    user = request.user
    sla = report_selectors.sla_compliance_by_week(user=user, now=now, days=90)
    mtbf = report_selectors.mtbf_by_equipment_model(user=user, now=now, days=365)
    precision = report_selectors.alert_precision_by_detector(user=user)
    at_risk = report_selectors.account_list_at_risk(user=user, now=now)
    return render(request, "desk/reports.html", {
        "sla": sla, "mtbf": mtbf, "precision": precision, "at_risk": at_risk,
        "charts": {**{f"sla_{k}": v for k, v in charts.sla_charts(sla).items()},
                   "mtbf": charts.mtbf_chart(mtbf), "precision": charts.precision_chart(precision),
                   "risk": charts.risk_chart(at_risk)}})
