"""Django admin for every CRM model: search, filters and inlines for the back office."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from service_crm import models as m
from service_crm.services.audit import audit_record, snapshot


class AuditedAdminMixin:
    """Every change made in the admin writes an audit row like a service change does: who,
    when, the values before and after (``admin.add``, ``admin.change``, ``admin.delete``),
    also for the rows of inlines and for bulk deletion."""

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        before = snapshot(type(obj)._default_manager.filter(pk=obj.pk).first()) \
            if change else None
        super().save_model(request, obj, form, change)  # type: ignore[misc]
        audit_record(actor=_actor(request), action="admin.change" if change else "admin.add",
                     obj=obj, before=before, at=timezone.now())

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        audit_record(actor=_actor(request), action="admin.delete", obj=obj, before=None,
                     at=timezone.now(), deleting=True)
        super().delete_model(request, obj)  # type: ignore[misc]

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        now = timezone.now()
        for obj in queryset:
            audit_record(actor=_actor(request), action="admin.delete", obj=obj, before=None,
                         at=now, deleting=True)
        super().delete_queryset(request, queryset)  # type: ignore[misc]

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        now = timezone.now()
        model = formset.model
        befores = {f.instance.pk: snapshot(model._default_manager.filter(pk=f.instance.pk)
                                           .first())
                   for f in formset.forms if f.instance.pk is not None and f.has_changed()}
        for f in getattr(formset, "deleted_forms", []):
            if f.instance.pk is not None:
                audit_record(actor=_actor(request), action="admin.delete", obj=f.instance,
                             before=None, at=now, deleting=True)
        super().save_formset(request, form, formset, change)  # type: ignore[misc]
        for obj in formset.new_objects:
            audit_record(actor=_actor(request), action="admin.add", obj=obj, before=None,
                         at=now)
        for obj, _fields in formset.changed_objects:
            audit_record(actor=_actor(request), action="admin.change", obj=obj,
                         before=befores.get(obj.pk), at=now)


def _actor(request: HttpRequest) -> Any:
    return request.user if request.user.is_authenticated else None


if TYPE_CHECKING:
    from django.contrib.admin import ModelAdmin, TabularInline
else:
    # The stubs make these generic; at runtime Django's classes are not subscriptable (and
    # django_stubs_ext is a dev-only dependency), so give them a no-op __class_getitem__.
    class ModelAdmin(AuditedAdminMixin, admin.ModelAdmin):
        def __class_getitem__(cls, _params):
            return cls

    class TabularInline(admin.TabularInline):
        def __class_getitem__(cls, _params):
            return cls


class ContactInline(TabularInline[m.Contact, m.Account]):
    model = m.Contact
    extra = 0
    fields = ("name", "email", "phone", "roles", "offer_consent", "consent_given_at",
              "consent_method")


class SiteInline(TabularInline[m.Site, m.Account]):
    model = m.Site
    extra = 0


class InteractionInline(TabularInline[m.Interaction, Any]):
    model = m.Interaction
    extra = 0
    fields = ("at", "kind", "summary", "contact", "asset", "ticket", "by")
    readonly_fields = fields
    ordering = ("-at",)
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(m.Account)
class AccountAdmin(ModelAdmin[m.Account]):
    list_display = ("name", "industry", "segment", "account_manager", "health")
    list_filter = ("industry", "segment")
    search_fields = ("name", "vat_id", "contacts__name", "contacts__email")
    inlines = [SiteInline, ContactInline, InteractionInline]

    @admin.display(description="health")
    def health(self, obj: m.Account) -> int:
        from django.utils import timezone

        from service_crm.selectors.accounts import account_health_get

        return account_health_get(account=obj, now=timezone.now()).score


@admin.register(m.Contact)
class ContactAdmin(ModelAdmin[m.Contact]):
    list_display = ("name", "account", "email", "offer_consent", "consent_method")
    list_filter = ("offer_consent", "consent_method")
    search_fields = ("name", "email", "account__name")
    autocomplete_fields = ("account",)
    actions = ("erase_personal_data",)

    @admin.action(description="Erase personal data of the selected contacts (on their request)")
    def erase_personal_data(self, request: HttpRequest, queryset: Any) -> None:
        from django.contrib import messages
        from django.core.exceptions import ValidationError

        from service_crm.services.privacy import contact_erase

        for contact in queryset:
            try:
                contact_erase(contact=contact, actor=request.user)
            except ValidationError as exc:
                self.message_user(request, " ".join(exc.messages), messages.ERROR)
                return
        self.message_user(request, f"Erased {queryset.count()} contact(s).")


class AssetInline(TabularInline[m.Asset, m.Site]):
    model = m.Asset
    extra = 0
    fields = ("serial", "equipment_model", "install_date", "warranty_end", "status")
    show_change_link = True


@admin.register(m.Site)
class SiteAdmin(ModelAdmin[m.Site]):
    list_display = ("name", "account", "city", "country", "region", "timezone")
    list_filter = ("region", "country")
    search_fields = ("name", "account__name", "city")
    inlines = [AssetInline]


class MetricInline(TabularInline[m.MetricSpec, m.EquipmentModel]):
    model = m.MetricSpec
    extra = 0


class FailureModeInline(TabularInline[m.FailureMode, m.EquipmentModel]):
    model = m.FailureMode
    extra = 0
    show_change_link = True


class ServiceTaskInline(TabularInline[m.ServiceTask, m.EquipmentModel]):
    model = m.ServiceTask
    extra = 0


class ProfileImportForm(forms.Form):
    text = forms.CharField(widget=forms.Textarea(attrs={"rows": 24, "cols": 100}),
                           required=False, label="Profile (YAML)")
    file = forms.FileField(required=False, label="or a .yaml file")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not data.get("text") and not data.get("file"):
            raise forms.ValidationError("Paste a profile or choose a file.")
        return data

    def profile_text(self) -> str:
        upload = self.cleaned_data.get("file")
        if upload is not None:
            return bytes(upload.read()).decode("utf-8", "replace")
        return str(self.cleaned_data["text"])


@admin.register(m.EquipmentModel)
class EquipmentModelAdmin(ModelAdmin[m.EquipmentModel]):
    list_display = ("name", "manufacturer", "equipment_type", "kind", "running_metric",
                    "profile_updated_at", "contract_list_price")
    list_filter = ("equipment_type",)
    search_fields = ("name", "manufacturer", "kind")
    inlines = [MetricInline, FailureModeInline, ServiceTaskInline]
    fieldsets = (
        (None, {"fields": ("name", "manufacturer", "equipment_type", "contract_list_price")}),
        ("Equipment profile (what the anomaly detector knows)", {
            "fields": ("kind", ("running_metric", "running_above"),
                       ("bearing_balls", "bearing_pitch_ratio"), "speed_metric")}),
    )
    actions = ("export_profiles",)
    change_list_template = "admin/service_crm/equipmentmodel/change_list.html"

    def get_urls(self) -> list[Any]:
        from django.urls import path

        own = [path("import-profile/", self.admin_site.admin_view(self.import_profile_view),
                    name="service_crm_equipmentmodel_import")]
        return own + super().get_urls()

    def import_profile_view(self, request: HttpRequest) -> HttpResponse:
        """Import a profile pasted or uploaded as YAML; its errors are listed by field."""
        from django.core.exceptions import PermissionDenied, ValidationError
        from django.shortcuts import redirect
        from django.template.response import TemplateResponse

        from service_crm.adapters.profiles import equipment_profile_import, profile_load_yaml

        if not (self.has_add_permission(request) and self.has_change_permission(request)):
            raise PermissionDenied
        form = ProfileImportForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            try:
                model = equipment_profile_import(
                    profile=profile_load_yaml(text=form.profile_text()),
                    actor=_actor(request))
            except ValidationError as exc:
                for key, messages in exc.message_dict.items():
                    form.add_error(None, f"{key}: {' '.join(messages)}")
            else:
                self.message_user(request, f"Imported the equipment profile of {model.name}.")
                return redirect("admin:service_crm_equipmentmodel_change", model.pk)
        context = {**self.admin_site.each_context(request), "opts": self.model._meta,
                   "form": form, "title": "Import an equipment profile"}
        return TemplateResponse(request, "admin/service_crm/equipmentmodel/import_profile.html",
                                context)

    @admin.action(description="Export the equipment profiles (YAML)")
    def export_profiles(self, request: HttpRequest, queryset: Any) -> HttpResponse:
        from service_crm.adapters.profiles import equipment_profile_yaml

        body = "".join("---\n" + equipment_profile_yaml(model=em) for em in queryset)
        response = HttpResponse(body, content_type="application/yaml; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="equipment-profiles.yaml"'
        return response


class BomInline(TabularInline[m.BomLine, m.FailureMode]):
    model = m.BomLine
    extra = 0
    autocomplete_fields = ("part",)


@admin.register(m.FailureMode)
class FailureModeAdmin(ModelAdmin[m.FailureMode]):
    list_display = ("code", "name", "equipment_model", "required_skill", "labour_hours")
    list_filter = ("required_skill", "equipment_model")
    search_fields = ("code", "name")
    inlines = [BomInline]


class DeviceInline(TabularInline[m.DeviceLink, m.Asset]):
    model = m.DeviceLink
    extra = 0


@admin.register(m.Asset)
class AssetAdmin(ModelAdmin[m.Asset]):
    list_display = ("serial", "equipment_model", "site", "install_date", "warranty_end", "status")
    list_filter = ("status", "equipment_model", "site__region")
    search_fields = ("serial", "devices__device_key", "site__name", "site__account__name")
    # A line's machines name it as parent: searched by serial, not a select of every asset.
    autocomplete_fields = ("parent",)
    inlines = [DeviceInline]
    list_select_related = ("equipment_model", "site__account")


@admin.register(m.DeviceLink)
class DeviceLinkAdmin(ModelAdmin[m.DeviceLink]):
    list_display = ("device_key", "asset", "linked_at")
    search_fields = ("device_key", "asset__serial")


class SlaInline(TabularInline[m.SlaTarget, m.MaintenanceContract]):
    model = m.SlaTarget
    extra = 0


class ContractDocumentInline(TabularInline[m.ContractDocument, m.MaintenanceContract]):
    model = m.ContractDocument
    extra = 0
    fields = ("title", "file", "uploaded_at")


@admin.register(m.ContractDocument)
class ContractDocumentAdmin(ModelAdmin[m.ContractDocument]):
    list_display = ("title", "contract", "uploaded_at")
    search_fields = ("title", "contract__number", "contract__account__name")
    list_select_related = ("contract",)


@admin.register(m.MaintenanceContract)
class ContractAdmin(ModelAdmin[m.MaintenanceContract]):
    list_display = ("number", "account", "tier", "start", "end", "auto_renew", "renewal_status",
                    "price")
    list_filter = ("tier", "renewal_status", "auto_renew", "covers_parts")
    search_fields = ("number", "account__name")
    date_hierarchy = "end"
    filter_horizontal = ("assets",)
    inlines = [SlaInline, ContractDocumentInline]


@admin.register(m.BusinessCalendar)
class CalendarAdmin(ModelAdmin[m.BusinessCalendar]):
    list_display = ("name", "timezone", "always_open", "opens", "closes")
    search_fields = ("name",)


@admin.register(m.SlaTarget)
class SlaTargetAdmin(ModelAdmin[m.SlaTarget]):
    list_display = ("contract", "priority", "response_h", "resolution_h")
    list_filter = ("priority",)
    search_fields = ("contract__number",)


@admin.register(m.WarrantySlaTarget)
class WarrantySlaTargetAdmin(ModelAdmin[m.WarrantySlaTarget]):
    list_display = ("priority", "response_h", "resolution_h", "calendar")


class GeneratedReadOnlyAdmin:
    """Rows the automation writes (planned visits, charge lines): looked at, never edited."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(m.PlannedVisit)
class PlannedVisitAdmin(GeneratedReadOnlyAdmin, ModelAdmin[m.PlannedVisit]):
    list_display = ("due", "contract", "asset", "status", "work_order", "note")
    list_filter = ("status",)
    search_fields = ("contract__number", "asset__serial", "contract__account__name")
    date_hierarchy = "due"


@admin.register(m.WorkOrderPhoto)
class WorkOrderPhotoAdmin(GeneratedReadOnlyAdmin, ModelAdmin[m.WorkOrderPhoto]):
    """Taken on site through the job sheet; seen on the work order's pages (the files are
    served only through views that check the work order, never from MEDIA_URL)."""

    list_display = ("work_order", "caption", "width", "height", "uploaded_at", "uploaded_by")
    search_fields = ("caption",)
    exclude = ("image",)


@admin.register(m.WorkOrderSignature)
class WorkOrderSignatureAdmin(GeneratedReadOnlyAdmin, ModelAdmin[m.WorkOrderSignature]):
    list_display = ("work_order", "signed_by", "signed_at")
    search_fields = ("signed_by",)
    exclude = ("image",)


@admin.register(m.WorkOrderCharge)
class WorkOrderChargeAdmin(GeneratedReadOnlyAdmin, ModelAdmin[m.WorkOrderCharge]):
    list_display = ("work_order", "kind", "description", "quantity", "unit_price", "covered",
                    "covered_by")
    list_filter = ("kind", "covered")
    search_fields = ("description", "covered_by")


@admin.register(m.WebhookEndpoint)
class WebhookEndpointAdmin(ModelAdmin[m.WebhookEndpoint]):
    """Receivers of our business events. Only superusers (the integration's owners) see or
    change them: the secret signs every call."""

    list_display = ("name", "url", "active", "topics")
    list_filter = ("active",)
    search_fields = ("name", "url")

    def has_module_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_superuser)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_superuser)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_superuser)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_superuser)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_superuser)


@admin.register(m.OutboxEvent)
class OutboxEventAdmin(GeneratedReadOnlyAdmin, ModelAdmin[m.OutboxEvent]):
    list_display = ("created_at", "topic", "id")
    list_filter = ("topic",)
    search_fields = ("id", "topic")
    date_hierarchy = "created_at"


@admin.action(description="Replay the selected deliveries")
def replay_deliveries(modeladmin: Any, request: HttpRequest, queryset: Any) -> None:
    from django.contrib import messages
    from django.core.exceptions import ValidationError

    from service_crm.services.webhooks import webhook_replay

    n = 0
    for delivery in queryset:
        try:
            webhook_replay(delivery=delivery, actor=request.user)
        except ValidationError as exc:
            modeladmin.message_user(request, "; ".join(exc.messages), messages.ERROR)
            return
        n += 1
    modeladmin.message_user(request, f"{n} deliveries queued again.", messages.SUCCESS)


@admin.register(m.WebhookDelivery)
class WebhookDeliveryAdmin(GeneratedReadOnlyAdmin, ModelAdmin[m.WebhookDelivery]):
    """The delivery log: every event to every endpoint, attempts, last answer; replayable."""

    list_display = ("event", "endpoint", "status", "attempts", "last_status_code",
                    "last_error", "next_attempt_at", "delivered_at")
    list_filter = ("status", "endpoint", "event__topic")
    search_fields = ("event__id", "endpoint__name")
    list_select_related = ("event", "endpoint")
    actions = [replay_deliveries]


@admin.register(m.Notification)
class NotificationAdmin(GeneratedReadOnlyAdmin, ModelAdmin[m.Notification]):
    """The emails the automation owed: sent, waiting for a retry, or given up (with why)."""

    list_display = ("kind", "args", "status", "attempts", "last_error", "created_at",
                    "next_attempt_at", "sent_at")
    list_filter = ("status", "kind")
    date_hierarchy = "created_at"


@admin.action(description="Approve the selected invoice drafts")
def approve_invoices(modeladmin: Any, request: HttpRequest, queryset: Any) -> None:
    from django.contrib import messages
    from django.core.exceptions import ValidationError

    from service_crm.services.billing import invoice_approve

    for invoice in queryset:
        try:
            invoice_approve(invoice=invoice, actor=request.user)
        except ValidationError as exc:
            modeladmin.message_user(request, f"{invoice.number}: {'; '.join(exc.messages)}",
                                    messages.ERROR)
            return
    modeladmin.message_user(request, f"{queryset.count()} invoices approved.", messages.SUCCESS)


class InvoiceLineInline(TabularInline[m.WorkOrderCharge, m.Invoice]):
    model = m.WorkOrderCharge
    fields = ("work_order", "kind", "description", "quantity", "unit_price")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(m.Invoice)
class InvoiceAdmin(GeneratedReadOnlyAdmin, ModelAdmin[m.Invoice]):
    """Invoice drafts built from billable work; approved through the audited service."""

    list_display = ("__str__", "account", "status", "created_at", "approved_at", "approved_by")
    list_filter = ("status",)
    search_fields = ("account__name",)
    inlines = [InvoiceLineInline]
    actions = [approve_invoices]


@admin.register(m.SalesOrder)
class SalesOrderAdmin(GeneratedReadOnlyAdmin, ModelAdmin[m.SalesOrder]):
    list_display = ("__str__", "account", "po_reference", "created_at")
    search_fields = ("po_reference", "account__name")


@admin.register(m.PriceListEntry)
class PriceListEntryAdmin(GeneratedReadOnlyAdmin, ModelAdmin[m.PriceListEntry]):
    """The ERP keeps the price list (POST /api/v1/erp/prices/): looked at here."""

    list_display = ("kind", "part", "currency", "unit_price", "valid_from", "valid_until",
                    "updated_at")
    list_filter = ("kind", "currency")
    search_fields = ("part__sku", "part__name")


@admin.register(m.FollowUpTask)
class FollowUpTaskAdmin(ModelAdmin[m.FollowUpTask]):
    list_display = ("title", "account", "assignee", "due", "done_at")
    list_filter = ("done_at",)
    search_fields = ("title", "account__name")
    raw_id_fields = ("account", "contact", "asset", "ticket", "activity")


@admin.register(m.Alert)
class AlertAdmin(ModelAdmin[m.Alert]):
    list_display = ("alert_id", "revision", "state", "device_key", "asset", "severity",
                    "failure_mode_code", "score", "at")
    list_filter = ("state", "severity", "kind", "failure_mode_code")
    search_fields = ("alert_id", "device_key", "asset__serial")
    date_hierarchy = "at"
    raw_id_fields = ("asset", "episode")


class AlertInline(TabularInline[m.Alert, m.Episode]):
    model = m.Alert
    extra = 0
    fields = ("alert_id", "revision", "state", "severity", "score", "at")
    readonly_fields = fields


class TicketInline(TabularInline[m.Ticket, m.Episode]):
    model = m.Ticket
    extra = 0
    fields = ("summary", "status", "priority", "coverage", "opened_at")
    readonly_fields = fields
    show_change_link = True


@admin.register(m.Episode)
class EpisodeAdmin(ModelAdmin[m.Episode]):
    list_display = ("pk", "asset", "failure_mode_code", "status", "peak_severity", "opened_at",
                    "watch_until", "reopened_count")
    list_filter = ("status", "peak_severity", "failure_mode_code")
    search_fields = ("asset__serial", "failure_mode_code")
    raw_id_fields = ("asset", "failure_mode")
    inlines = [AlertInline, TicketInline]


class WorkOrderInline(TabularInline[m.WorkOrder, m.Ticket]):
    model = m.WorkOrder
    extra = 0
    fields = ("engineer", "status", "scheduled_start", "scheduled_end")
    show_change_link = True


class PauseInline(TabularInline[m.TicketPause, m.Ticket]):
    model = m.TicketPause
    extra = 0


@admin.register(m.Ticket)
class TicketAdmin(ModelAdmin[m.Ticket]):
    list_display = ("number", "summary", "account", "priority", "status", "coverage",
                    "resolution_due", "response_breached", "resolution_breached", "outcome")
    list_filter = ("status", "priority", "coverage", "source", "response_breached",
                   "resolution_breached", "outcome")
    search_fields = ("summary", "account__name", "asset__serial")
    date_hierarchy = "opened_at"
    raw_id_fields = ("asset", "episode", "contract", "account")
    inlines = [WorkOrderInline, PauseInline, InteractionInline]
    list_select_related = ("account",)


@admin.register(m.TicketPause)
class TicketPauseAdmin(ModelAdmin[m.TicketPause]):
    list_display = ("ticket", "started_at", "ended_at", "reason")
    search_fields = ("reason",)


@admin.register(m.AlertOutcome)
class AlertOutcomeAdmin(ModelAdmin[m.AlertOutcome]):
    list_display = ("detector", "failure_mode_code", "outcome", "ticket", "recorded_at")
    list_filter = ("detector", "failure_mode_code", "outcome")
    search_fields = ("detector", "failure_mode_code")


class PartUsedInline(TabularInline[m.WorkOrderPart, m.WorkOrder]):
    model = m.WorkOrderPart
    extra = 0


@admin.register(m.WorkOrder)
class WorkOrderAdmin(ModelAdmin[m.WorkOrder]):
    list_display = ("__str__", "ticket", "engineer", "status", "scheduled_start", "time_spent_min")
    list_filter = ("status", "engineer__region")
    search_fields = ("ticket__summary", "engineer__name", "ticket__asset__serial")
    raw_id_fields = ("ticket",)
    inlines = [PartUsedInline]


class AbsenceInline(TabularInline[m.Unavailability, m.Engineer]):
    model = m.Unavailability
    extra = 0


@admin.register(m.Engineer)
class EngineerAdmin(ModelAdmin[m.Engineer]):
    list_display = ("name", "region", "skills", "available", "warehouse")
    list_filter = ("region", "available")
    search_fields = ("name", "email")
    inlines = [AbsenceInline]


@admin.register(m.Unavailability)
class UnavailabilityAdmin(ModelAdmin[m.Unavailability]):
    list_display = ("engineer", "starts_at", "ends_at", "reason")
    list_filter = ("engineer__region",)
    search_fields = ("engineer__name", "reason")


class StockInline(TabularInline[m.Stock, m.SparePart]):
    model = m.Stock
    extra = 0


@admin.register(m.SparePart)
class SparePartAdmin(ModelAdmin[m.SparePart]):
    list_display = ("sku", "name", "price")
    search_fields = ("sku", "name")
    filter_horizontal = ("compatible_models",)
    inlines = [StockInline]


@admin.register(m.Warehouse)
class WarehouseAdmin(ModelAdmin[m.Warehouse]):
    list_display = ("code", "name", "region")
    list_filter = ("region",)
    search_fields = ("code", "name")


@admin.register(m.Stock)
class StockAdmin(ModelAdmin[m.Stock]):
    list_display = ("part", "warehouse", "quantity")
    list_filter = ("warehouse",)
    search_fields = ("part__sku", "part__name")


class OfferLineInline(TabularInline[m.OfferLine, m.Offer]):
    model = m.OfferLine
    extra = 0


@admin.register(m.Offer)
class OfferAdmin(ModelAdmin[m.Offer]):
    list_display = ("number", "title", "account", "status", "discount_pct", "valid_until",
                    "approved_by", "sent_at")
    list_filter = ("status",)
    search_fields = ("title", "account__name")
    raw_id_fields = ("asset", "episode", "renews", "opportunity")
    inlines = [OfferLineInline]
    # Status moves through the services (approval rules, consent); not by editing the field.
    readonly_fields = ("status", "approved_by", "approved_at", "sent_at", "decided_at")


@admin.register(m.Opportunity)
class OpportunityAdmin(GeneratedReadOnlyAdmin, ModelAdmin[m.Opportunity]):
    """The pipeline is worked at the desk (/desk/opportunities/), where every move is checked
    and audited: looked at here."""

    list_display = ("number", "title", "account", "kind", "stage", "value", "currency",
                    "probability_pct", "expected_close", "owner")
    list_filter = ("stage", "kind", "source")
    search_fields = ("title", "account__name")


@admin.register(m.Interaction)
class InteractionAdmin(ModelAdmin[m.Interaction]):
    list_display = ("at", "account", "kind", "summary", "by")
    list_filter = ("kind",)
    search_fields = ("summary", "body", "account__name")
    date_hierarchy = "at"
    raw_id_fields = ("account", "contact", "asset", "ticket")


@admin.register(m.AuditLog)
class AuditLogAdmin(ModelAdmin[m.AuditLog]):
    """Read-only: the table is append-only (the database refuses changes)."""

    list_display = ("at", "actor_label", "action", "object_type", "object_id")
    list_filter = ("action", "object_type")
    search_fields = ("object_id", "actor_label", "action")
    date_hierarchy = "at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# Line items are edited inline on their parent; these list views serve searches across parents.
@admin.register(m.MetricSpec)
class MetricSpecAdmin(ModelAdmin[m.MetricSpec]):
    list_display = ("metric", "unit", "role", "failure_mode", "low", "high", "drift",
                    "equipment_model")
    list_filter = ("equipment_model", "role", "unit")
    search_fields = ("metric",)


@admin.register(m.BomLine)
class BomLineAdmin(ModelAdmin[m.BomLine]):
    list_display = ("failure_mode", "part", "quantity")
    list_filter = ("failure_mode__equipment_model",)
    search_fields = ("part__sku", "part__name", "failure_mode__code")


@admin.register(m.ServiceTask)
class ServiceTaskAdmin(ModelAdmin[m.ServiceTask]):
    list_display = ("name", "equipment_model", "interval_days", "duration_min", "skill")
    list_filter = ("equipment_model", "skill")
    search_fields = ("name",)


@admin.register(m.OfferLine)
class OfferLineAdmin(ModelAdmin[m.OfferLine]):
    list_display = ("offer", "kind", "description", "quantity", "unit_price")
    list_filter = ("kind",)
    search_fields = ("description", "part__sku")
    raw_id_fields = ("offer",)


@admin.register(m.WorkOrderPart)
class WorkOrderPartAdmin(ModelAdmin[m.WorkOrderPart]):
    list_display = ("work_order", "part", "warehouse", "quantity")
    list_filter = ("warehouse",)
    search_fields = ("part__sku",)
    raw_id_fields = ("work_order",)


@admin.register(m.ApiToken)
class ApiTokenAdmin(ModelAdmin[m.ApiToken]):
    """Tokens are listed and revoked here; they are made by their owners through the API
    (the key is shown only to them), so there is no add or edit form."""

    list_display = ("name", "user", "prefix", "created_at", "expires_at", "last_used_at",
                    "revoked_at", "revoked_reason")
    list_filter = ("revoked_reason",)
    search_fields = ("name", "user__username", "prefix")
    readonly_fields = ("user", "name", "prefix", "created_at", "expires_at", "last_used_at",
                       "revoked_at", "revoked_reason")
    exclude = ("key_hash", "password_fingerprint")
    actions = ("revoke",)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request: HttpRequest, queryset: Any) -> None:
        from service_crm.services.api_tokens import api_token_revoke

        for token in queryset:
            api_token_revoke(token=token, actor=request.user, reason="revoked by admin")


@admin.register(m.LoginThrottle)
class LoginThrottleAdmin(ModelAdmin[m.LoginThrottle]):
    """Failed log-in counts (hashed keys). Deleting a row lifts that block at once."""

    list_display = ("key", "failures", "blocked_until", "updated_at")
    readonly_fields = ("key", "failures", "blocked_until", "updated_at")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class UserAdmin(AuditedAdminMixin, DjangoUserAdmin):  # type: ignore[type-arg]
    """Django's user admin, audited; deactivating a user revokes their API tokens."""

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        from service_crm.services.api_tokens import api_tokens_revoke_for_user

        super().save_model(request, obj, form, change)
        if change and not obj.is_active:
            api_tokens_revoke_for_user(user=obj, actor=request.user, reason="owner deactivated")

    def user_change_password(self, request: HttpRequest, id: str,  # noqa: A002
                             form_url: str = "") -> Any:
        """The admin's own password form saves without save_model: audit it here (the hash
        stays out of the row; the user's API tokens end with the old password)."""
        response = super().user_change_password(request, id, form_url)
        if request.method == "POST" and response.status_code == 302:
            user = get_user_model()._default_manager.get(pk=id)
            audit_record(actor=_actor(request), action="admin.password_change", obj=user,
                         before=None, at=timezone.now())
        return response


admin.site.unregister(get_user_model())
admin.site.register(get_user_model(), UserAdmin)
