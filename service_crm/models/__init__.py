"""CRM models, one module per entity."""

from service_crm.models.account import Account, Contact
from service_crm.models.alert import Alert, Episode
from service_crm.models.api_token import ApiToken
from service_crm.models.asset import Asset, DeviceLink
from service_crm.models.audit import AuditLog
from service_crm.models.contract import (
    BusinessCalendar,
    ContractDocument,
    MaintenanceContract,
    SlaTarget,
    WarrantySlaTarget,
)
from service_crm.models.engineer import Engineer, Unavailability
from service_crm.models.equipment import (
    BomLine,
    EquipmentModel,
    FailureMode,
    MetricSpec,
    ServiceTask,
)
from service_crm.models.field_evidence import WorkOrderPhoto, WorkOrderSignature
from service_crm.models.interaction import Interaction
from service_crm.models.invoice import Invoice, SalesOrder
from service_crm.models.login_throttle import LoginThrottle
from service_crm.models.offer import Offer, OfferLine
from service_crm.models.opportunity import Opportunity
from service_crm.models.outbox import Notification, OutboxEvent, WebhookDelivery, WebhookEndpoint
from service_crm.models.part import SparePart, Stock, Warehouse
from service_crm.models.planned_visit import PlannedVisit
from service_crm.models.price import PriceListEntry
from service_crm.models.site import Site
from service_crm.models.task import FollowUpTask
from service_crm.models.ticket import AlertOutcome, Ticket, TicketPause
from service_crm.models.work_order import WorkOrder, WorkOrderCharge, WorkOrderPart

__all__ = [
    "Account", "Alert", "AlertOutcome", "ApiToken", "Asset", "AuditLog", "BomLine",
    "BusinessCalendar",
    "Contact", "ContractDocument", "DeviceLink", "Engineer", "Episode", "EquipmentModel",
    "FailureMode", "Interaction", "LoginThrottle", "MaintenanceContract", "MetricSpec", "Offer",
    "OfferLine", "Opportunity", "ServiceTask",
    "Site", "SlaTarget", "SparePart", "Stock", "Ticket", "TicketPause", "Unavailability",
    "Warehouse", "WorkOrder", "WorkOrderPart",
    "PlannedVisit", "WarrantySlaTarget", "WorkOrderCharge",
    "Notification", "OutboxEvent", "WebhookDelivery", "WebhookEndpoint", "Invoice",
    "SalesOrder", "PriceListEntry", "FollowUpTask", "WorkOrderPhoto", "WorkOrderSignature",
]
