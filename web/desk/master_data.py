"""Desk pages for data hygiene: likely duplicate accounts and contacts with a merge (asked
first, audited), the data-quality report, and the CSV import of accounts, contacts, sites
and assets (dry run, errors by line)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import path, reverse
from django.views.decorators.http import require_http_methods

from service_crm.selectors import access
from service_crm.selectors.data_quality import Finding, data_quality_report
from service_crm.selectors.duplicates import account_duplicates_find, contact_duplicates_find
from service_crm.services import imports as import_services
from service_crm.services import merge as merge_services
from web.desk.views import STAFF
from web.forms import call_service
from web.roles import role_required

DESK = tuple(merge_services.MERGE_ROLES)
MAX_UPLOAD = 5 * 1024 * 1024


class MergeForm(forms.Form):
    kind = forms.ChoiceField(choices=[("account", "account"), ("contact", "contact")])
    keep = forms.IntegerField(min_value=1)
    merge = forms.IntegerField(min_value=1)


class ImportForm(forms.Form):
    kind = forms.ChoiceField(choices=[("accounts", "Accounts"), ("contacts", "Contacts"),
                                      ("sites", "Sites"), ("assets", "Assets")])
    file = forms.FileField(label="CSV file (UTF-8, header row)")
    dry_run = forms.BooleanField(required=False, initial=True,
                                 label="Dry run: check only, store nothing")

    def clean_file(self) -> str:
        upload = self.cleaned_data["file"]
        if upload.size > MAX_UPLOAD:
            raise forms.ValidationError(f"At most {MAX_UPLOAD // (1024 * 1024)} MB per file.")
        try:
            return str(upload.read().decode("utf-8"))
        except UnicodeDecodeError:
            raise forms.ValidationError("The file is not UTF-8 text: save it as CSV UTF-8."
                                        ) from None


@role_required(*STAFF)
def duplicates(request: HttpRequest) -> HttpResponse:
    return render(request, "desk/data_duplicates.html", {
        "accounts": account_duplicates_find(user=request.user),
        "contacts": contact_duplicates_find(user=request.user),
        "can_merge": access.has_role(user=request.user, roles=merge_services.MERGE_ROLES)})


def finding_url(finding: Finding) -> str:
    """Where the desk fixes a finding: the asset's page, otherwise the account's."""
    if finding.kind == "asset":
        return reverse("desk:asset", args=[finding.id])
    return reverse("desk:account", args=[finding.account_id])


@role_required(*STAFF)
def data_quality(request: HttpRequest) -> HttpResponse:
    checks = data_quality_report(user=request.user)
    rows = [(c, [(f, finding_url(f)) for f in c.findings]) for c in checks]
    return render(request, "desk/data_quality.html", {
        "checks": rows, "total": sum(c.count for c in checks)})


@require_http_methods(["GET", "POST"])
@role_required(*DESK)
def merge(request: HttpRequest) -> HttpResponse:
    """GET shows what merging does (asks first); POST with ``confirm=yes`` merges."""
    form = MergeForm(request.POST if request.method == "POST" else request.GET)
    if not form.is_valid():
        return render(request, "desk/data_merge.html", {"form": form}, status=400)
    kind, keep_id, merge_id = (form.cleaned_data[k] for k in ("kind", "keep", "merge"))
    if kind == "account":
        keep: Any = access.account_get_for_user(user=request.user, pk=keep_id)
        other: Any = access.account_get_for_user(user=request.user, pk=merge_id)
    else:
        keep = access.contact_get_for_user(user=request.user, pk=keep_id)
        other = access.contact_get_for_user(user=request.user, pk=merge_id)
    if request.method == "GET" or request.POST.get("confirm") != "yes":
        return render(request, "desk/data_merge.html", {
            "form": form, "kind": kind, "keep": keep, "other": other})
    done: list[dict[str, int]] = []
    service = merge_services.account_merge if kind == "account" else merge_services.contact_merge
    if call_service(form, lambda: done.append(service(keep=keep, merge=other,
                                                      actor=request.user))):
        moved = ", ".join(f"{k} {v}" for k, v in sorted(done[0].items())) or "nothing to move"
        messages.success(request, f"{other} merged into {keep} ({moved}).")
        account_id = keep.pk if kind == "account" else keep.account_id
        return HttpResponseRedirect(reverse("desk:account", args=[account_id]))
    return render(request, "desk/data_merge.html", {
        "form": form, "kind": kind, "keep": keep, "other": other}, status=400)


@require_http_methods(["GET", "POST"])
@role_required(*DESK)
def data_import(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        return render(request, "desk/data_import.html", {"form": ImportForm()})
    form = ImportForm(request.POST, request.FILES)
    report = None
    if form.is_valid() and call_service(form, lambda: setattr(
            form, "report", import_services.master_data_import(
                kind=form.cleaned_data["kind"], text=form.cleaned_data["file"],
                actor=request.user, dry_run=form.cleaned_data["dry_run"]))):
        report = form.report  # type: ignore[attr-defined]
    status = 200 if report is not None and not report.errors else 400
    return render(request, "desk/data_import.html", {"form": form, "report": report},
                  status=status)


def url_patterns() -> list[Any]:
    """The data-hygiene pages, included by :mod:`web.desk.urls`."""
    return [
        path("data/duplicates/", duplicates, name="duplicates"),
        path("data/quality/", data_quality, name="data-quality"),
        path("data/merge/", merge, name="merge"),
        path("data/import/", data_import, name="import"),
    ]
