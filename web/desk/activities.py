"""Desk pages for the operational CRM: an account's whole timeline (paged, filtered by kind)
with a form to log a call, visit, meeting or note and a follow-up task; the follow-up task
list (mine, everyone's, overdue); the offer pipeline with its weighted forecast."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import path, reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from service_crm.models.choices import InteractionKind
from service_crm.selectors import access
from service_crm.selectors import activities as activity_selectors
from service_crm.services import activities as activity_services
from web.desk.views import STAFF, BadFilter, _bad_filter, _choice, _page
from web.forms import DateTimeLocal, button_action, call_service
from web.roles import role_required

KIND_CHOICES = [(k, str(InteractionKind(k).label)) for k in activity_services.LOGGABLE]
TASK_STATES = [("open", "Open"), ("overdue", "Overdue"), ("done", "Done")]
TASK_SCOPES = [("mine", "Mine"), ("all", "Everyone's")]


class ActivityForm(forms.Form):
    kind = forms.ChoiceField(choices=KIND_CHOICES)
    summary = forms.CharField(max_length=300, label="What happened")
    body = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False,
                           label="Notes")
    at = forms.DateTimeField(widget=DateTimeLocal(), required=False, label="When (UTC)",
                             help_text="empty = now")
    contact = forms.TypedChoiceField(coerce=int, required=False, empty_value=None)
    follow_up_title = forms.CharField(max_length=200, required=False, label="Follow-up")
    follow_up_assignee = forms.TypedChoiceField(coerce=int, required=False, empty_value=None,
                                                label="for")
    follow_up_due = forms.DateField(required=False, label="due",
                                    widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args: Any, account: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        contacts = access.contact_list_for_user(user=user).filter(account=account)
        contact_field: Any = self.fields["contact"]
        contact_field.choices = [("", "—"), *((c.pk, c.name) for c in contacts)]
        staff = activity_selectors.staff_users()
        assignee_field: Any = self.fields["follow_up_assignee"]
        assignee_field.choices = [("", "—"), *((u.pk, u.get_username()) for u in staff)]
        self.fields["follow_up_assignee"].initial = getattr(user, "pk", None)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        wants = [data.get(k) for k in ("follow_up_title", "follow_up_due")]
        if any(wants) and not all(wants):
            self.add_error("follow_up_due" if data.get("follow_up_title")
                           else "follow_up_title",
                           "A follow-up needs a title and a due date.")
        return data


def _timeline_page(request: HttpRequest, pk: int, *, form: ActivityForm | None = None,
                   status: int = 200) -> HttpResponse:
    account = access.account_get_for_user(user=request.user, pk=pk)
    try:
        kind = _choice(request, "kind", InteractionKind.choices, "")
    except BadFilter as e:
        return _bad_filter(request, e, title="Timeline", url_name="desk:accounts")
    return render(request, "desk/account_timeline.html", {
        "account": account, "kind": kind, "kinds": InteractionKind.choices,
        "page": _page(request, activity_selectors.timeline_for_account(
            user=request.user, account=account, kind=kind)),
        "tasks": activity_selectors.task_list_for_user(user=request.user).filter(
            account=account, done_at__isnull=True),
        "form": form or ActivityForm(account=account, user=request.user)}, status=status)


@role_required(*STAFF)
def account_timeline(request: HttpRequest, pk: int) -> HttpResponse:
    return _timeline_page(request, pk)


@require_POST
@role_required(*STAFF)
def activity_log(request: HttpRequest, pk: int) -> HttpResponse:
    account = access.account_get_for_user(user=request.user, pk=pk)
    form = ActivityForm(request.POST, account=account, user=request.user)
    if form.is_valid():
        data = form.cleaned_data
        contact = (access.contact_get_for_user(user=request.user, pk=data["contact"])
                   if data["contact"] else None)
        follow_up = None
        if data["follow_up_title"]:
            assignee = activity_selectors.staff_users().filter(
                pk=data["follow_up_assignee"] or request.user.pk).first()
            follow_up = activity_services.FollowUp(
                title=data["follow_up_title"], assignee=assignee, due=data["follow_up_due"])
        if call_service(form, lambda: activity_services.activity_log(
                account=account, kind=data["kind"], summary=data["summary"],
                body=data["body"], contact=contact, at=data["at"], follow_up=follow_up,
                actor=request.user)):
            messages.success(request, "Logged on the timeline"
                             + (f"; follow-up due {follow_up.due}." if follow_up else "."))
            return HttpResponseRedirect(reverse("desk:account-timeline", args=[account.pk]))
    return _timeline_page(request, pk, form=form, status=400)


@role_required(*STAFF)
def task_list(request: HttpRequest) -> HttpResponse:
    try:
        state = _choice(request, "state", TASK_STATES, "open")
        scope = _choice(request, "scope", TASK_SCOPES, "mine")
    except BadFilter as e:
        return _bad_filter(request, e, title="Follow-up tasks", url_name="desk:tasks")
    today = timezone.localdate(timezone.now(), dt.UTC)
    qs = activity_selectors.task_list_for_user(user=request.user)
    if scope == "mine":
        qs = qs.filter(assignee_id=request.user.pk)
    if state == "done":
        qs = qs.filter(done_at__isnull=False).order_by("-done_at")
    else:
        qs = qs.filter(done_at__isnull=True)
        if state == "overdue":
            qs = qs.filter(due__lt=today)
    return render(request, "desk/task_list.html", {
        "page": _page(request, qs), "state": state, "scope": scope, "states": TASK_STATES,
        "scopes": TASK_SCOPES, "today": today})


@require_POST
@role_required(*STAFF)
def task_done(request: HttpRequest, pk: int) -> HttpResponse:
    task = activity_selectors.task_get_for_user(user=request.user, pk=pk)
    done = button_action(lambda: activity_services.task_complete(task=task,
                                                                 actor=request.user))
    if done.ok:
        messages.success(request, f"Done: {task.title}")
    for error in done.form.non_field_errors():
        messages.error(request, str(error))
    return HttpResponseRedirect(reverse("desk:tasks"))


@role_required(*STAFF)
def pipeline(request: HttpRequest) -> HttpResponse:
    return render(request, "desk/pipeline.html", {
        "p": activity_selectors.pipeline_get(user=request.user, now=timezone.now())})


def url_patterns() -> list[Any]:
    """The operational-CRM pages, included by :mod:`web.desk.urls`."""
    return [
        path("accounts/<int:pk>/timeline/", account_timeline, name="account-timeline"),
        path("accounts/<int:pk>/activities/", activity_log, name="activity-log"),
        path("tasks/", task_list, name="tasks"),
        path("tasks/<int:pk>/done/", task_done, name="task-done"),
        path("pipeline/", pipeline, name="pipeline"),
    ]
