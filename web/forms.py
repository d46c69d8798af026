"""Forms shared by the workspaces, and the one way a service's ValidationError reaches the
user: attached to the form field it names."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from django import forms
from django.core.exceptions import ValidationError

from service_crm.models import Engineer
from service_crm.models.choices import Outcome, TicketStatus
from service_crm.services.field import NOTES_MAX_CHARS

T = TypeVar("T")


def call_service(form: forms.Form, service: Callable[[], object]) -> bool:
    """Run ``service``; a rule it enforces becomes a form error (by field when the form has
    that field, otherwise at the top of the form). False when it refused."""
    try:
        service()
        return True
    except ValidationError as exc:
        errors = exc.message_dict if hasattr(exc, "error_dict") else {None: exc.messages}
        for field, messages in errors.items():
            target = field if field in form.fields else None
            for message in messages:
                prefix = "" if target or not field or field == "__all__" else f"{field}: "
                form.add_error(target, prefix + message)
        return False


@dataclass
class ButtonResult(Generic[T]):
    """What a button's service did: `ok`, its `result` (None when it refused), and the
    (field-less) `form` that carries its refusal for the page to show."""

    ok: bool
    result: T | None
    form: forms.Form


def button_action(service: Callable[[], T]) -> ButtonResult[T]:
    """Run the service behind a button (a POST with no fields) through :func:`call_service`."""
    form = forms.Form({})
    form.is_valid()             # bound and valid: the service's refusal is added to it
    done: list[T] = []
    ok = call_service(form, lambda: done.append(service()))
    return ButtonResult(ok, done[0] if ok else None, form)


class TicketTransitionForm(forms.Form):
    to = forms.ChoiceField(choices=TicketStatus.choices, label="Move to")
    outcome = forms.ChoiceField(choices=[("", "—"), *Outcome.choices], required=False)


class PauseForm(forms.Form):
    reason = forms.CharField(max_length=200)


class DateTimeLocal(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self) -> None:
        super().__init__(format="%Y-%m-%dT%H:%M")


class ScheduleForm(forms.Form):
    """Book an engineer. Only engineers of the site's ``region`` are offered (the service
    refuses the others); a visit ending after the ticket's resolution deadline is refused
    unless ``accept_late`` says the desk knows the SLA will be breached."""

    engineer = forms.ModelChoiceField(queryset=Engineer.objects.filter(available=True))
    start = forms.DateTimeField(widget=DateTimeLocal(), help_text="UTC")
    end = forms.DateTimeField(widget=DateTimeLocal(), help_text="UTC")
    accept_late = forms.BooleanField(
        required=False, label="Book anyway: the visit ends after the resolution deadline")

    def __init__(self, *args: Any, region: str | None = None,
                 resolution_due: dt.datetime | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.resolution_due = resolution_due
        if region is not None:
            field = self.fields["engineer"]
            field.queryset = Engineer.objects.filter(  # type: ignore[attr-defined]
                available=True, region=region).order_by("name")

    def clean(self) -> dict[str, object]:
        data = super().clean() or {}
        start, end = data.get("start"), data.get("end")
        if start and end and end <= start:
            self.add_error("end", "The window must end after it starts.")
        elif (end and self.resolution_due is not None and end > self.resolution_due
              and not data.get("accept_late")):
            self.add_error("end", f"The visit ends after the ticket's resolution deadline "
                                  f"({self.resolution_due:%Y-%m-%d %H:%M} UTC): the SLA "
                                  "would be breached. Choose an earlier window, or tick "
                                  "'Book anyway'.")
        return data


class CompleteForm(forms.Form):
    report = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), label="What was done")
    outcome = forms.ChoiceField(choices=Outcome.choices)
    time_spent_min = forms.IntegerField(min_value=1, label="Time on site (min)")
    # The customer's signature, drawn on the phone (static/signature.js fills `signature`);
    # optional: nobody may be on site to sign.
    signed_by = forms.CharField(max_length=120, required=False, label="Customer's name")
    signature = forms.CharField(required=False, widget=forms.HiddenInput,
                                max_length=700_000)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("signature") and not (data.get("signed_by") or "").strip():
            self.add_error("signed_by", "Write the name of the person who signed.")
        return data


class PhotoForm(forms.Form):
    image = forms.FileField(label="Photo")
    caption = forms.CharField(max_length=200, required=False, label="What it shows")


class ContractDocumentForm(forms.Form):
    """A PDF for a contract (the model checks type and size)."""

    title = forms.CharField(max_length=200)
    file = forms.FileField(label="PDF")


class DeviceClaimForm(forms.Form):
    """The desk attaches a device to an asset, named by its serial number (what is on the
    rating plate and in the customer's paperwork)."""

    asset = forms.CharField(max_length=64, label="Asset serial")


class ProgressForm(forms.Form):
    """Notes on the job sheet (the checklist ticks are checkboxes named check_<n>)."""

    notes = forms.CharField(widget=forms.Textarea(attrs={"rows": 3, "data-progress": ""}),
                            required=False,
                            max_length=NOTES_MAX_CHARS, strip=False,
                            label="Notes (saved as you type)")


class DecisionForm(forms.Form):
    """The customer's answer to an offer: accepting asks once more (``confirm``) and may
    carry their purchase-order number."""

    accepted = forms.TypedChoiceField(choices=[("yes", "Accept"), ("no", "Decline")],
                                      coerce=lambda v: v == "yes")
    po_reference = forms.CharField(max_length=60, required=False,
                                   label="Your purchase-order number (optional)")
    confirm = forms.BooleanField(required=False, widget=forms.HiddenInput)


class OfferDiscountForm(forms.Form):
    discount_pct = forms.DecimalField(min_value=0, max_value=100, max_digits=5,
                                      decimal_places=2, label="Discount %")
