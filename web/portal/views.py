"""The customer portal: the account's assets and health, tickets with their SLA status,
offers to accept or decline, contracts and their documents, and the contact's own personal
data."""

from __future__ import annotations

import json
from typing import Any, cast

from django import forms
from django.contrib import messages
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import Count, Prefetch, Q
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from service_crm.models import Asset, Contact, Interaction, SalesOrder
from service_crm.models.choices import (
    EpisodeStatus,
    InteractionKind,
    OfferStatus,
    Priority,
    TicketSource,
)
from service_crm.selectors import access
from service_crm.selectors.access import Role
from service_crm.selectors.offers import offer_totals_get
from service_crm.selectors.work_orders import work_order_record_get
from service_crm.services import offers as offer_services
from service_crm.services import privacy as privacy_services
from service_crm.services import tickets as ticket_services
from service_crm.services.audit import interaction_record
from web.field.views import service_report_response
from web.forms import DecisionForm, call_service
from web.roles import role_required

LIVE = [EpisodeStatus.OPEN, EpisodeStatus.WATCHING]


class ReportProblemForm(forms.Form):
    asset = forms.ModelChoiceField(queryset=Asset.objects.none(), label="Equipment")
    summary = forms.CharField(max_length=300, label="What is wrong?")

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = cast(forms.ModelChoiceField, self.fields["asset"])  # type: ignore[type-arg]
        field.queryset = access.asset_list_for_user(user=user)


@role_required(Role.CUSTOMER)
def home(request: HttpRequest, report_form: ReportProblemForm | None = None,
         status: int = 200) -> HttpResponse:
    user = request.user
    assets = access.asset_list_for_user(user=user).annotate(
        live_episodes=Count("episodes", filter=Q(episodes__status__in=LIVE)))
    return render(request, "portal/home.html", {
        "account": access.account_list_for_user(user=user).first(),
        "assets": assets,
        "tickets": access.ticket_list_for_user(user=user).order_by("-opened_at")[:50],
        "offers": access.offer_list_for_user(user=user).order_by("-sent_at")[:20],
        "contracts": access.contract_list_for_user(user=user).order_by("-end").prefetch_related(
            Prefetch("documents", queryset=access.contract_document_list_for_user(user=user))),
        "now": timezone.now(),
        "report_form": report_form or ReportProblemForm(user=user),
        "contact": access.contact_list_for_user(user=user).first(),
    }, status=status)


@require_POST
@role_required(Role.CUSTOMER)
def ticket_report(request: HttpRequest) -> HttpResponse:
    """A customer reports a problem with one of their own assets: a portal ticket."""
    form = ReportProblemForm(request.POST, user=request.user)
    actor: Any = request.user
    if form.is_valid() and call_service(form, lambda: ticket_services.ticket_open(
            asset=form.cleaned_data["asset"], summary=form.cleaned_data["summary"],
            source=TicketSource.PORTAL, priority=Priority.P3, actor=actor)):
        messages.success(request, "Thank you: the service desk has your report.")
        return HttpResponseRedirect(reverse("portal:home"))
    return home(request, report_form=form, status=400)


@role_required(Role.CUSTOMER)
def asset_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """One of the customer's machines: its readings over time with the issues we saw and the
    visits made, its open issues and its tickets (another account's asset answers 404)."""
    user = request.user
    asset = access.asset_get_for_user(user=user, pk=pk)
    episodes = list(access.episode_list_for_user(user=user).filter(asset=asset)
                    .order_by("-opened_at")[:20])
    visits = list(access.work_order_list_for_user(user=user).filter(
        ticket__asset=asset, scheduled_start__isnull=False).order_by("-scheduled_start")[:50])
    markers = [{"t": e.opened_at.timestamp(), "kind": "alert",
                "label": e.failure_mode.name if e.failure_mode else e.failure_mode_code}
               for e in episodes]
    markers += [{"t": w.scheduled_start.timestamp(), "kind": "work_order",
                 "label": f"Visit {w}"} for w in visits if w.scheduled_start is not None]
    return render(request, "portal/asset.html", {
        "asset": asset, "episodes": episodes, "markers": markers,
        "live": [e for e in episodes if e.status in LIVE],
        "tickets": access.ticket_list_for_user(user=user).filter(
            asset=asset).order_by("-opened_at")[:20],
        "contracts": access.contract_list_for_user(user=user).filter(assets=asset)})


@role_required(Role.CUSTOMER)
def ticket_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A ticket as the customer follows it: status, the SLA promised and kept, the visits
    booked and, once done, what the engineer did (their notes stay internal)."""
    user = request.user
    ticket = access.ticket_get_for_user(user=user, pk=pk)
    visits = [(w, work_order_record_get(work_order=w) if w.status == "completed" else None)
              for w in access.work_order_list_for_user(user=user).filter(
                  ticket=ticket).exclude(status="cancelled").order_by("pk")]
    return render(request, "portal/ticket.html", {"ticket": ticket, "visits": visits})


@role_required(Role.CUSTOMER)
def work_order_report(request: HttpRequest, pk: int) -> HttpResponse:
    """The service report of one of the account's completed visits (others 404)."""
    return service_report_response(request, access.work_order_get_for_user(
        user=request.user, pk=pk))


def _offer_page(request: HttpRequest, offer: Any, form: DecisionForm, *,
                status: int = 200, confirming: bool = False) -> HttpResponse:
    lines = list(offer.lines.all())
    return render(request, "portal/offer.html", {
        "offer": offer, "lines": lines, "money": offer_totals_get(offer=offer, lines=lines),
        "form": form, "open": offer.status == OfferStatus.SENT, "confirming": confirming,
        "order": SalesOrder.objects.filter(offer=offer).first()}, status=status)


@role_required(Role.CUSTOMER)
def offer_detail(request: HttpRequest, pk: int) -> HttpResponse:
    offer = access.offer_get_for_user(user=request.user, pk=pk)
    return _offer_page(request, offer, DecisionForm())


@require_POST
@role_required(Role.CUSTOMER)
def offer_decide(request: HttpRequest, pk: int) -> HttpResponse:
    """Accept (with the customer's PO number) or decline a sent offer. The first POST shows
    what is being agreed to, with its total, and asks again; only ``confirm`` decides."""
    offer = access.offer_get_for_user(user=request.user, pk=pk)
    form = DecisionForm(request.POST)
    actor: Any = request.user
    if not form.is_valid():
        return _offer_page(request, offer, form, status=400)
    if not form.cleaned_data["confirm"]:
        if offer.status != OfferStatus.SENT:
            form.add_error(None, f"This offer is {offer.get_status_display().lower()}; "
                                 "it can no longer be answered.")
            return _offer_page(request, offer, form, status=400)
        return _offer_page(request, offer, form, confirming=True)
    accepted = form.cleaned_data["accepted"]
    if call_service(form, lambda: offer_services.offer_decide(
            offer=offer, accepted=accepted, actor=actor,
            po_reference=form.cleaned_data["po_reference"])):
        order = SalesOrder.objects.filter(offer=offer).first()
        messages.success(request, f"Thank you: offer {offer.number} accepted, order "
                                  f"{order.number if order else ''} placed."
                         if accepted else f"Offer {offer.number} declined; thank you for "
                                          "letting us know.")
        return HttpResponseRedirect(reverse("portal:offer", args=[offer.pk]))
    offer.refresh_from_db()
    return _offer_page(request, offer, form, status=400)


@role_required(Role.CUSTOMER)
def contract_document(request: HttpRequest, pk: int) -> FileResponse:
    """Download one of the account's contract documents (another account's answers 404)."""
    doc = access.contract_document_get_for_user(user=request.user, pk=pk)
    try:
        handle = doc.file.open("rb")
    except FileNotFoundError:
        raise Http404("The document's file is missing; the service desk has been told.") from None
    name = f"{doc.contract.number} {doc.title}".replace("/", "-").strip() + ".pdf"
    return FileResponse(handle, as_attachment=True, filename=name,
                        content_type="application/pdf")


@role_required(Role.CUSTOMER)
def personal_data(request: HttpRequest) -> HttpResponse:
    """Everything we hold about the signed-in contact, as a JSON download (GDPR art. 15/20)."""
    contact = Contact.objects.select_related("account").get(
        user_id=int(request.user.pk or 0))
    data = {
        "exported_at": timezone.now(),
        "contact": {"name": contact.name, "email": contact.email, "phone": contact.phone,
                    "roles": contact.roles, "account": contact.account.name,
                    "offer_consent": contact.offer_consent,
                    "consent_given_at": contact.consent_given_at,
                    "consent_method": contact.consent_method},
        "user": {"username": request.user.get_username(),
                 "email": getattr(request.user, "email", ""),
                 "date_joined": getattr(request.user, "date_joined", None),
                 "last_login": getattr(request.user, "last_login", None)},
        "offers_received": [{"number": o.number, "title": o.title, "sent_at": o.sent_at,
                             "status": o.status} for o in contact.offers_received.all()],
        "interactions": [{"at": i.at, "kind": i.kind, "summary": i.summary}
                         for i in Interaction.objects.filter(contact=contact).order_by("at")],
    }
    response = HttpResponse(json.dumps(data, cls=DjangoJSONEncoder, indent=2),
                            content_type="application/json")
    response["Content-Disposition"] = 'attachment; filename="aftercare-personal-data.json"'
    return response


@require_POST
@role_required(Role.CUSTOMER)
def personal_data_deletion(request: HttpRequest) -> HttpResponse:
    """The contact asks for their personal data to be erased. Erasure has legal exceptions
    (contracts, invoices), so the request goes on the account timeline for the desk to
    decide and answer, rather than deleting anything here."""
    contact = Contact.objects.select_related("account").get(
        user_id=int(request.user.pk or 0))
    with transaction.atomic():
        interaction_record(
            account=contact.account, contact=contact, kind=InteractionKind.NOTE,
            at=timezone.now(), by=request.user,  # type: ignore[arg-type]
            summary=f"{contact.name} asked for their personal data to be deleted (portal)")
    messages.success(request, "Your request is recorded; we will answer by email within "
                              "one month.")
    return HttpResponseRedirect(reverse("portal:home"))


@require_POST
@role_required(Role.CUSTOMER)
def consent_withdraw(request: HttpRequest) -> HttpResponse:
    """The signed-in contact stops offers being sent to them, at once and by themself."""
    contact = access.contact_get_for_user(
        user=request.user, pk=Contact.objects.filter(user_id=int(request.user.pk or 0))
        .values_list("pk", flat=True).first())
    privacy_services.contact_consent_withdraw(contact=contact, actor=request.user)
    messages.success(request, "Done: we will send you no more offers.")
    return HttpResponseRedirect(reverse("portal:home"))
