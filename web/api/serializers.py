"""API representations: flat, with ids for links and the display labels a UI needs."""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from rest_framework import serializers

from service_crm.models import (
    Account,
    Alert,
    ApiToken,
    Asset,
    Episode,
    EquipmentModel,
    Offer,
    Ticket,
    WorkOrder,
)
from service_crm.models.choices import Outcome
from service_crm.selectors.accounts import account_health_get, account_health_get_many
from service_crm.selectors.offers import offer_totals_get


class _AccountListSerializer(serializers.ListSerializer):  # type: ignore[type-arg]
    """Works out the health of a whole page of accounts in one query."""

    def to_representation(self, data: Any) -> list[Any]:
        items = list(data.all() if hasattr(data, "all") else data)
        self.child.context["health"] = account_health_get_many(  # type: ignore[union-attr]
            account_ids=[a.pk for a in items], now=timezone.now())
        return [self.child.to_representation(a) for a in items]  # type: ignore[union-attr]


class AccountSerializer(serializers.ModelSerializer[Account]):
    # Health as every page shows it (100 - the at-risk score), worked out when asked, not
    # the stored column the housekeeping refreshes for renewal opportunities only.
    health_score = serializers.SerializerMethodField()

    class Meta:
        model = Account
        fields = ["id", "name", "vat_id", "industry", "segment", "health_score", "created_at"]
        list_serializer_class = _AccountListSerializer

    def get_health_score(self, obj: Account) -> int:
        known = self.context.get("health") or {}
        health = known.get(obj.pk) or account_health_get(account=obj, now=timezone.now())
        return int(health.score)


class AssetSerializer(serializers.ModelSerializer[Asset]):
    account = serializers.IntegerField(source="site.account_id", read_only=True)
    site_name = serializers.CharField(source="site.name", read_only=True)
    region = serializers.CharField(source="site.region", read_only=True)
    equipment_model_name = serializers.CharField(source="equipment_model.name", read_only=True)
    device_keys = serializers.SerializerMethodField()
    parent_serial = serializers.CharField(source="parent.serial", read_only=True,
                                          allow_null=True, default=None)
    children = serializers.SerializerMethodField(
        help_text="ids of the assets that name this one as their parent (that you may see)")

    class Meta:
        model = Asset
        fields = ["id", "serial", "account", "site", "site_name", "region", "equipment_model",
                  "equipment_model_name", "install_date", "warranty_end", "status",
                  "device_keys", "parent", "parent_serial", "children"]

    def get_device_keys(self, obj: Asset) -> list[str]:
        return [d.device_key for d in obj.devices.all()]

    def get_children(self, obj: Asset) -> list[int]:
        return [c.pk for c in obj.children.all()]


class AlertSerializer(serializers.ModelSerializer[Alert]):
    class Meta:
        model = Alert
        fields = ["id", "alert_id", "revision", "state", "device_key", "asset", "episode",
                  "kind", "severity", "failure_mode_code", "score", "opened_at", "at",
                  "evidence", "detectors", "classified"]


class EpisodeClassifySerializer(serializers.Serializer[Any]):
    failure_mode = serializers.CharField(
        max_length=63, help_text="code of one of the asset's equipment model's failure modes")
    remember = serializers.BooleanField(
        default=False, help_text="save the leading metrics' failure mode into the model")


class EpisodeNotAFaultSerializer(serializers.Serializer[Any]):
    remember = serializers.BooleanField(
        default=True, help_text="save the leading metrics into the equipment model as "
                                "operating inputs (never again evidence of a fault)")


class EpisodeSerializer(serializers.ModelSerializer[Episode]):
    account = serializers.IntegerField(source="asset.site.account_id", read_only=True)

    class Meta:
        model = Episode
        fields = ["id", "asset", "account", "failure_mode_code", "status", "opened_at",
                  "last_alert_at", "peak_severity", "watch_until", "reopened_count",
                  "closed_at"]


class TicketSerializer(serializers.ModelSerializer[Ticket]):
    number = serializers.CharField(read_only=True)
    # Empty until the ticket is resolved: the schema says so (a blank is not an enum member).
    outcome = serializers.ChoiceField(choices=Outcome.choices, allow_blank=True, read_only=True)

    class Meta:
        model = Ticket
        fields = ["id", "number", "account", "asset", "episode", "contract", "coverage",
                  "source", "priority", "status", "summary", "assigned_to", "opened_at",
                  "response_due", "resolution_due", "responded_at", "resolved_at",
                  "closed_at", "paused_at", "response_breached", "resolution_breached",
                  "outcome"]
        read_only_fields = fields


class TicketOpenSerializer(serializers.Serializer[Any]):
    asset = serializers.IntegerField(min_value=1)
    summary = serializers.CharField(max_length=300)
    priority = serializers.ChoiceField(choices=["p1", "p2", "p3", "p4"], default="p3")
    # The metaclass moves declared fields off the class, so `source` does not clash at run time.
    source = serializers.ChoiceField(  # type: ignore[assignment]
        choices=["phone", "portal", "email"], default="portal",
        help_text="customers always open as portal")


class TicketTransitionSerializer(serializers.Serializer[Any]):
    to = serializers.CharField()
    outcome = serializers.CharField(required=False, allow_blank=True, default="")


class WorkOrderSerializer(serializers.ModelSerializer[WorkOrder]):
    account = serializers.IntegerField(source="ticket.account_id", read_only=True)
    asset = serializers.IntegerField(source="ticket.asset_id", read_only=True)

    class Meta:
        model = WorkOrder
        fields = ["id", "ticket", "account", "asset", "engineer", "status", "scheduled_start",
                  "scheduled_end", "checklist", "started_at", "completed_at",
                  "time_spent_min", "notes", "completion_report"]
        read_only_fields = fields


class WorkOrderCompleteSerializer(serializers.Serializer[Any]):
    report = serializers.CharField()
    outcome = serializers.ChoiceField(choices=["fault_confirmed", "no_fault_found"])
    time_spent_min = serializers.IntegerField(min_value=1)


class OfferSerializer(serializers.ModelSerializer[Offer]):
    number = serializers.CharField(read_only=True)
    total = serializers.SerializerMethodField()

    class Meta:
        model = Offer
        fields = ["id", "number", "account", "asset", "episode", "renews", "opportunity",
                  "status", "title",
                  "discount_pct", "valid_until", "created_at", "approved_at", "sent_at",
                  "decided_at", "total"]
        read_only_fields = fields

    def get_total(self, obj: Offer) -> str:
        """The grand total as the offer prints it (``service_crm.selectors.offers``)."""
        return f"{offer_totals_get(offer=obj).total:.2f}"


class RequiredBooleanField(serializers.BooleanField):
    """A boolean that must be given. DRF's own reads a missing form field as False (an
    unticked HTML checkbox), which turned a form without the answer into a decline."""

    default_empty_html = serializers.empty


class OfferDecisionSerializer(serializers.Serializer[Any]):
    accepted = RequiredBooleanField(help_text="true accepts the offer, false declines it")
    po_reference = serializers.CharField(
        max_length=60, required=False, default="", allow_blank=True,
        help_text="The customer's purchase-order number (accepted offers become a sales order)")


class DeviceSerializer(serializers.Serializer[Any]):
    device_key = serializers.CharField()
    first_seen = serializers.DateTimeField()
    last_seen = serializers.DateTimeField(allow_null=True)
    state = serializers.CharField(allow_null=True)
    asset_id = serializers.IntegerField(allow_null=True)


class DeviceClaimSerializer(serializers.Serializer[Any]):
    asset = serializers.IntegerField(min_value=1, help_text="id of the asset to attach to")


class RollupSerializer(serializers.Serializer[Any]):
    bucket = serializers.DateTimeField()
    device = serializers.CharField()
    metric = serializers.CharField()
    min = serializers.FloatField(allow_null=True)
    max = serializers.FloatField(allow_null=True)
    mean = serializers.FloatField(allow_null=True)
    last = serializers.FloatField(allow_null=True)
    count = serializers.IntegerField()


class TokenRequestSerializer(serializers.Serializer[Any]):
    username = serializers.CharField()
    password = serializers.CharField()
    name = serializers.CharField(required=False, max_length=100,
                                 help_text="what the token is for (default: api)")
    expires_in_days = serializers.IntegerField(required=False, min_value=1, max_value=365,
                                               help_text="default 90")


class TokenCreateSerializer(serializers.Serializer[Any]):
    name = serializers.CharField(max_length=100)
    expires_in_days = serializers.IntegerField(required=False, min_value=1, max_value=365,
                                               help_text="default 90")


class TokenRotateSerializer(serializers.Serializer[Any]):
    expires_in_days = serializers.IntegerField(required=False, min_value=1, max_value=365,
                                               help_text="default: the old token's lifetime")


class ApiTokenSerializer(serializers.ModelSerializer[ApiToken]):
    """A token as listed: never its key (only the first characters, ``prefix``)."""

    username = serializers.CharField(source="user.username", read_only=True)

    class Meta:
        model = ApiToken
        fields = ["id", "user", "username", "name", "prefix", "created_at", "expires_at",
                  "last_used_at", "revoked_at", "revoked_reason"]


class TokenSerializer(serializers.Serializer[Any]):
    """A token just made: ``token`` is the key, shown this once."""

    token = serializers.CharField()
    id = serializers.IntegerField()
    name = serializers.CharField()
    expires_at = serializers.DateTimeField()


class EquipmentModelSerializer(serializers.ModelSerializer[EquipmentModel]):
    has_profile = serializers.BooleanField(read_only=True)

    class Meta:
        model = EquipmentModel
        fields = ["id", "name", "manufacturer", "equipment_type", "kind", "has_profile",
                  "profile_updated_at"]


class EquipmentModelDetailSerializer(EquipmentModelSerializer):
    profile = serializers.SerializerMethodField(
        help_text="the equipment profile (the YAML format of anomaly/profiles, as JSON)")

    class Meta(EquipmentModelSerializer.Meta):
        fields = [*EquipmentModelSerializer.Meta.fields, "profile"]

    def get_profile(self, obj: EquipmentModel) -> dict[str, Any]:
        from service_crm.adapters.profiles import equipment_profile_dict

        return equipment_profile_dict(model=obj)
