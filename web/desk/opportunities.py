"""Desk pages for the sales pipeline: the opportunities (mine or everyone's, by stage), one
opportunity with its stage moves, its figures, its quotes (drafted here, then approved and sent
on the offer page like any offer) and its history; the weighted forecast with its charts; and
the buttons that start an opportunity from an account at risk or an ageing asset."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import path, reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from service_crm import conf
from service_crm.models.choices import OfferLineKind, OpportunityKind, OpportunityStage
from service_crm.models.opportunity import OPEN_STAGES
from service_crm.selectors import access
from service_crm.selectors import activities as activity_selectors
from service_crm.selectors import opportunities as sel
from service_crm.services import opportunities as services
from web.desk import charts
from web.desk.views import STAFF, BadFilter, _bad_filter, _choice, _page
from web.forms import ButtonResult, button_action, call_service
from web.roles import role_required

STAGE_FILTER = [("open", "Open"), *OpportunityStage.choices, ("all", "All")]
SCOPES = [("all", "Everyone's"), ("mine", "Mine")]
ASSET_KINDS = [(k, str(OpportunityKind(k).label)) for k in
               (OpportunityKind.NEW_EQUIPMENT, OpportunityKind.UPGRADE, OpportunityKind.RETROFIT)]
QUOTE_ROWS = 4
AGEING_ROWS = 10  # the oldest ageing assets without an opportunity, on the list page
_DATE = forms.DateInput(attrs={"type": "date"})


class OpportunityForm(forms.Form):
    title = forms.CharField(max_length=200)
    kind = forms.ChoiceField(choices=OpportunityKind.choices)
    asset = forms.TypedChoiceField(coerce=int, required=False, empty_value=None)
    value = forms.DecimalField(min_value=0, max_digits=14, decimal_places=2)
    currency = forms.CharField(max_length=3, min_length=3, required=False,
                               help_text="empty = the installation's")
    expected_close = forms.DateField(widget=_DATE)
    probability_pct = forms.IntegerField(min_value=0, max_value=100, required=False,
                                         label="Probability %", help_text="empty = the stage's")

    def __init__(self, *args: Any, account: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        assets = access.asset_list_for_user(user=user).filter(site__account=account)
        field: Any = self.fields["asset"]
        field.choices = [("", "—"), *((a.pk, a.serial) for a in assets.order_by("serial")[:500])]


class OpportunityEditForm(forms.Form):
    title = forms.CharField(max_length=200)
    value = forms.DecimalField(min_value=0, max_digits=14, decimal_places=2)
    expected_close = forms.DateField(widget=_DATE)
    probability_pct = forms.IntegerField(min_value=0, max_value=100, required=False,
                                         label="Probability %",
                                         help_text="empty = the stage's default")
    owner = forms.TypedChoiceField(coerce=int, required=False, empty_value=None)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field: Any = self.fields["owner"]
        field.choices = [(u.pk, u.get_username()) for u in activity_selectors.staff_users()]


class MoveForm(forms.Form):
    to = forms.ChoiceField(choices=OpportunityStage.choices)
    lost_reason = forms.CharField(max_length=300, required=False, label="Why lost")


class QuoteLineForm(forms.Form):
    # Rows of a table: each field names itself for screen readers (no visible label).
    kind = forms.ChoiceField(choices=[(OfferLineKind.EQUIPMENT, "Equipment"),
                                      (OfferLineKind.SERVICE, "Service")],
                             widget=forms.Select(attrs={"aria-label": "Kind"}))
    description = forms.CharField(max_length=300, required=False, widget=forms.TextInput(
        attrs={"aria-label": "Description"}))
    quantity = forms.DecimalField(min_value=Decimal("0.01"), max_digits=8, decimal_places=2,
                                  required=False, initial=1, widget=forms.NumberInput(
                                      attrs={"aria-label": "Quantity"}))
    unit_price = forms.DecimalField(min_value=0, max_digits=12, decimal_places=2,
                                    required=False, widget=forms.NumberInput(
                                        attrs={"aria-label": "Unit price"}))


QuoteLines = forms.formset_factory(QuoteLineForm, extra=QUOTE_ROWS)


class QuoteForm(forms.Form):
    discount_pct = forms.DecimalField(min_value=0, max_value=100, max_digits=5, decimal_places=2,
                                      initial=0, label="Discount %")
    valid_until = forms.DateField(widget=_DATE, required=False, help_text="empty = the default")
    lines = forms.CharField(required=False, widget=forms.HiddenInput)  # the lines' errors


class AssetOpportunityForm(forms.Form):
    kind = forms.ChoiceField(choices=ASSET_KINDS)


@role_required(*STAFF)
def opportunity_list(request: HttpRequest) -> HttpResponse:
    try:
        stage = _choice(request, "stage", STAGE_FILTER, "open")
        scope = _choice(request, "scope", SCOPES, "all")
    except BadFilter as e:
        return _bad_filter(request, e, title="Opportunities", url_name="desk:opportunities")
    qs = sel.opportunity_list_for_user(user=request.user)
    if stage == "open":
        qs = qs.filter(stage__in=OPEN_STAGES)
    elif stage != "all":
        qs = qs.filter(stage=stage)
    if scope == "mine":
        qs = qs.filter(owner_id=request.user.pk)
    return render(request, "desk/opportunity_list.html", {
        "page": _page(request, qs.order_by("expected_close", "pk")), "stage": stage,
        "stages": STAGE_FILTER, "scope": scope, "scopes": SCOPES,
        "ageing": sel.asset_list_ageing(user=request.user, on=timezone.now().date())[:AGEING_ROWS],
        "asset_kinds": ASSET_KINDS})


def _detail_page(request: HttpRequest, opp: Any, *, status: int = 200,
                 **forms_: Any) -> HttpResponse:
    quotes = list(opp.quotes.order_by("-created_at", "-pk"))
    open_quote = next((q for q in quotes if q.status in services.OPEN_QUOTE), None)
    return render(request, "desk/opportunity_detail.html", {
        "opp": opp, "quotes": quotes, "open_quote": open_quote,
        "moves": [(s, str(OpportunityStage(s).label)) for s in services.MOVES[opp.stage]],
        "history": sel.opportunity_history(opportunity=opp)[:50],
        "is_manager": access.has_role(user=request.user, roles=services.MANAGERS),
        "move_form": forms_.get("move_form") or MoveForm(),
        "edit_form": forms_.get("edit_form") or OpportunityEditForm(initial={
            "title": opp.title, "value": opp.value, "expected_close": opp.expected_close,
            "probability_pct": opp.probability_pct if opp.probability_manual else None,
            "owner": opp.owner_id}),
        "quote_form": forms_.get("quote_form") or QuoteForm(),
        "quote_lines": forms_.get("quote_lines") or QuoteLines(prefix="line"),
    }, status=status)


@role_required(*STAFF)
def opportunity_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _detail_page(request, sel.opportunity_get_for_user(user=request.user, pk=pk))


def _back(opp: Any) -> HttpResponse:
    return HttpResponseRedirect(reverse("desk:opportunity", args=[opp.pk]))


@require_POST
@role_required(*STAFF)
def opportunity_move(request: HttpRequest, pk: int) -> HttpResponse:
    opp = sel.opportunity_get_for_user(user=request.user, pk=pk)
    form = MoveForm(request.POST)
    if form.is_valid() and call_service(form, lambda: services.opportunity_move(
            opportunity=opp, to=form.cleaned_data["to"], actor=request.user,
            lost_reason=form.cleaned_data["lost_reason"])):
        opp.refresh_from_db()
        messages.success(request, f"{opp.number} is in {opp.get_stage_display().lower()} now "
                                  f"({opp.probability_pct} %).")
        return _back(opp)
    return _detail_page(request, opp, move_form=form, status=400)


@require_POST
@role_required(*STAFF)
def opportunity_edit(request: HttpRequest, pk: int) -> HttpResponse:
    opp = sel.opportunity_get_for_user(user=request.user, pk=pk)
    form = OpportunityEditForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        owner = (activity_selectors.staff_users().filter(pk=data["owner"]).first()
                 if data["owner"] else None)
        if call_service(form, lambda: services.opportunity_update(
                opportunity=opp, actor=request.user, title=data["title"], value=data["value"],
                expected_close=data["expected_close"], owner=owner,
                probability_pct=data["probability_pct"],
                probability_reset=data["probability_pct"] is None and opp.probability_manual)):
            messages.success(request, f"{opp.number} saved.")
            return _back(opp)
    return _detail_page(request, opp, edit_form=form, status=400)


@require_POST
@role_required(*STAFF)
def opportunity_quote(request: HttpRequest, pk: int) -> HttpResponse:
    """Draft the quote from the filled line rows (empty rows are skipped) and open it."""
    opp = sel.opportunity_get_for_user(user=request.user, pk=pk)
    form, rows = QuoteForm(request.POST), QuoteLines(request.POST, prefix="line")
    if form.is_valid() and rows.is_valid():
        lines = []
        for n, row in enumerate(rows.cleaned_data, start=1):
            if not row or not (row.get("description") or "").strip():
                continue
            if row.get("quantity") is None or row.get("unit_price") is None:
                form.add_error("lines", f"Line {n}: give a quantity and a unit price.")
                continue
            lines.append(services.QuoteLine(kind=row["kind"], description=row["description"],
                                            quantity=row["quantity"],
                                            unit_price=row["unit_price"]))
        done: list[Any] = []
        if not form.errors and call_service(form, lambda: done.append(
                services.opportunity_quote_create(
                    opportunity=opp, lines=lines, actor=request.user,
                    discount_pct=form.cleaned_data["discount_pct"],
                    valid_until=form.cleaned_data["valid_until"]))):
            offer = done[0]
            messages.success(request, f"Quote {offer.number} drafted for {opp.number}: check "
                                      "it, have a big discount approved, and send it.")
            return HttpResponseRedirect(reverse("desk:offer", args=[offer.pk]))
    opp.refresh_from_db()
    return _detail_page(request, opp, quote_form=form, quote_lines=rows, status=400)


@role_required(*STAFF)
def opportunity_new(request: HttpRequest, pk: int) -> HttpResponse:
    """A new opportunity for an account (GET the form, POST it)."""
    account = access.account_get_for_user(user=request.user, pk=pk)
    if request.method != "POST":
        form = OpportunityForm(account=account, user=request.user, initial={
            "expected_close": timezone.now().date() + dt.timedelta(
                days=services.DEFAULT_CLOSE_DAYS)})
        return render(request, "desk/opportunity_form.html", {"account": account, "form": form})
    form = OpportunityForm(request.POST, account=account, user=request.user)
    done: list[Any] = []
    if form.is_valid():
        data = form.cleaned_data
        asset = (access.asset_get_for_user(user=request.user, pk=data["asset"])
                 if data["asset"] else None)
        if call_service(form, lambda: done.append(services.opportunity_create(
                account=account, title=data["title"], kind=data["kind"], value=data["value"],
                expected_close=data["expected_close"], asset=asset, actor=request.user,
                currency=(data["currency"] or "").upper() or None,
                probability_pct=data["probability_pct"]))):
            messages.success(request, f"{done[0].number} opened.")
            return _back(done[0])
    return render(request, "desk/opportunity_form.html", {"account": account, "form": form},
                  status=400)


def _started(request: HttpRequest, done: ButtonResult[Any], *, what: str,
             refused_to: str) -> HttpResponse:
    """After a start button: the new opportunity's page, or back with the refusal."""
    if done.result is not None:
        messages.success(request, f"{done.result.number} opened for {what}: "
                                  "give it a value and an expected close.")
        return _back(done.result)
    for error in done.form.non_field_errors():
        messages.error(request, str(error))
    return HttpResponseRedirect(refused_to)


@require_POST
@role_required(*STAFF)
def opportunity_from_account(request: HttpRequest, pk: int) -> HttpResponse:
    """The button on an account at risk (account page, at-risk report)."""
    account = access.account_get_for_user(user=request.user, pk=pk)
    done = button_action(lambda: services.opportunity_start_from_account(
        account=account, actor=request.user))
    return _started(request, done, what=account.name,
                    refused_to=reverse("desk:account", args=[account.pk]))


@require_POST
@role_required(*STAFF)
def opportunity_from_asset(request: HttpRequest, pk: int) -> HttpResponse:
    """The button on an ageing asset's page."""
    asset = access.asset_get_for_user(user=request.user, pk=pk)
    form = AssetOpportunityForm(request.POST)
    kind = form.cleaned_data["kind"] if form.is_valid() else OpportunityKind.NEW_EQUIPMENT
    done = button_action(lambda: services.opportunity_start_from_asset(
        asset=asset, actor=request.user, kind=kind))
    return _started(request, done, what=asset.serial,
                    refused_to=reverse("desk:asset", args=[asset.pk]))


@role_required(*STAFF)
def forecast(request: HttpRequest) -> HttpResponse:
    try:
        scope = _choice(request, "scope", SCOPES, "all")
    except BadFilter as e:
        return _bad_filter(request, e, title="Forecast", url_name="desk:forecast")
    fc = sel.opportunity_forecast_get(user=request.user,
                                      owner=request.user if scope == "mine" else None)
    currency = charts_currency(fc)
    return render(request, "desk/opportunity_forecast.html", {
        "fc": fc, "scope": scope, "scopes": SCOPES, "chart_currency": currency,
        "charts": charts.forecast_charts(fc, currency=currency)})


def charts_currency(fc: sel.Forecast) -> str:
    """The charts show one currency: the installation's, or the only one there is."""
    have = {r.currency for r in fc.totals}
    return conf.currency() if conf.currency() in have or not have else sorted(have)[0]


def url_patterns() -> list[Any]:
    """The sales pipeline's pages, included by :mod:`web.desk.urls`."""
    return [
        path("opportunities/", opportunity_list, name="opportunities"),
        path("opportunities/forecast/", forecast, name="forecast"),
        path("opportunities/<int:pk>/", opportunity_detail, name="opportunity"),
        path("opportunities/<int:pk>/move/", opportunity_move, name="opportunity-move"),
        path("opportunities/<int:pk>/edit/", opportunity_edit, name="opportunity-edit"),
        path("opportunities/<int:pk>/quote/", opportunity_quote, name="opportunity-quote"),
        path("accounts/<int:pk>/opportunities/new/", opportunity_new, name="opportunity-new"),
        path("accounts/<int:pk>/opportunity-from-risk/", opportunity_from_account,
             name="opportunity-from-account"),
        path("assets/<int:pk>/opportunity/", opportunity_from_asset,
             name="opportunity-from-asset"),
    ]
