"""Choice sets shared by the CRM models and services."""

from __future__ import annotations

from django.db import models


class Industry(models.TextChoices):
    FOOD = "food", "Food & beverage"
    PHARMA = "pharma", "Pharmaceuticals"
    AUTOMOTIVE = "automotive", "Automotive"
    LOGISTICS = "logistics", "Logistics & cold chain"
    WATER = "water", "Water utilities"
    MACHINING = "machining", "Machining & metalwork"
    OTHER = "other", "Other"


class Segment(models.TextChoices):
    ENTERPRISE = "enterprise", "Enterprise"
    MIDMARKET = "midmarket", "Mid-market"
    SMB = "smb", "Small business"


class ContactRole(models.TextChoices):
    DECISION_MAKER = "decision_maker", "Decision maker"
    TECHNICAL = "technical", "Technical"
    PROCUREMENT = "procurement", "Procurement"
    FINANCE = "finance", "Finance"


class ConsentMethod(models.TextChoices):
    WEB_FORM = "web_form", "Web form"
    EMAIL = "email", "Email reply"
    PHONE = "phone", "Phone call (recorded)"
    CONTRACT = "contract", "Signed contract clause"
    IN_PERSON = "in_person", "In person"


class AssetStatus(models.TextChoices):
    IN_SERVICE = "in_service", "In service"
    DOWN = "down", "Down"
    DECOMMISSIONED = "decommissioned", "Decommissioned"


class ContractTier(models.TextChoices):
    BRONZE = "bronze", "Bronze"
    SILVER = "silver", "Silver"
    GOLD = "gold", "Gold"
    PLATINUM = "platinum", "Platinum"


class RenewalStatus(models.TextChoices):
    NOT_DUE = "not_due", "Not due"
    OPPORTUNITY = "opportunity", "Opportunity"
    OFFERED = "offered", "Offered"
    RENEWED = "renewed", "Renewed"
    LAPSED = "lapsed", "Lapsed"


class Priority(models.TextChoices):
    P1 = "p1", "P1 critical"
    P2 = "p2", "P2 high"
    P3 = "p3", "P3 normal"
    P4 = "p4", "P4 low"


class AlertState(models.TextChoices):
    OPEN = "open", "Open"
    UPDATE = "update", "Update"
    CLEAR = "clear", "Clear"


class Severity(models.TextChoices):
    INFO = "info", "Info"
    WARNING = "warning", "Warning"
    CRITICAL = "critical", "Critical"


class EpisodeStatus(models.TextChoices):
    OPEN = "open", "Open"
    WATCHING = "watching", "Watching after repair"
    CLOSED = "closed", "Closed"


class Coverage(models.TextChoices):
    CONTRACT = "contract", "Maintenance contract"
    WARRANTY = "warranty", "Warranty"
    NONE = "none", "Not covered"


class TicketStatus(models.TextChoices):
    NEW = "new", "New"
    TRIAGED = "triaged", "Triaged"
    SCHEDULED = "scheduled", "Scheduled"
    IN_PROGRESS = "in_progress", "In progress"
    RESOLVED = "resolved", "Resolved"
    CLOSED = "closed", "Closed"


class TicketSource(models.TextChoices):
    ALERT = "alert", "Proactive alert"
    PHONE = "phone", "Phone"
    PORTAL = "portal", "Customer portal"
    EMAIL = "email", "Email"
    PLANNED = "planned", "Planned maintenance"


class Outcome(models.TextChoices):
    FAULT_CONFIRMED = "fault_confirmed", "Fault confirmed"
    NO_FAULT_FOUND = "no_fault_found", "No fault found"


class WorkOrderStatus(models.TextChoices):
    PROPOSED = "proposed", "Proposed"
    SCHEDULED = "scheduled", "Scheduled"
    IN_PROGRESS = "in_progress", "In progress"
    COMPLETED = "completed", "Completed"
    CANCELLED = "cancelled", "Cancelled"


class PlannedVisitStatus(models.TextChoices):
    PLANNED = "planned", "Planned (work order proposed)"
    SKIPPED = "skipped", "Skipped (recent visit)"
    CANCELLED = "cancelled", "Cancelled (contract changed)"
    DROPPED = "dropped", "Dropped by the desk"


class ChargeKind(models.TextChoices):
    PART = "part", "Spare part"
    LABOUR = "labour", "Labour"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    DEAD = "dead", "Given up"


class InvoiceStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    APPROVED = "approved", "Approved"


class OfferStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    PENDING_APPROVAL = "pending_approval", "Pending approval"
    SENT = "sent", "Sent"
    ACCEPTED = "accepted", "Accepted"
    DECLINED = "declined", "Declined"
    EXPIRED = "expired", "Expired"


class OfferLineKind(models.TextChoices):
    PART = "part", "Spare part"
    LABOUR = "labour", "Labour"
    CONTRACT = "contract", "Maintenance contract"
    RENEWAL = "renewal", "Contract renewal"
    UPGRADE = "upgrade", "Contract upgrade"
    EQUIPMENT = "equipment", "Equipment"
    SERVICE = "service", "Service"


class InteractionKind(models.TextChoices):
    CALL = "call", "Call"
    EMAIL = "email", "Email"
    VISIT = "visit", "Visit"
    MEETING = "meeting", "Meeting"
    NOTE = "note", "Note"
    AUTOMATION = "automation", "Automated step"


class OpportunityKind(models.TextChoices):
    NEW_EQUIPMENT = "new_equipment", "New equipment"
    UPGRADE = "upgrade", "Upgrade"
    RETROFIT = "retrofit", "Retrofit"
    CONTRACT = "contract", "Service contract"


class OpportunityStage(models.TextChoices):
    QUALIFY = "qualify", "Qualify"
    PROPOSE = "propose", "Propose"
    NEGOTIATE = "negotiate", "Negotiate"
    WON = "won", "Won"
    LOST = "lost", "Lost"


class OpportunitySource(models.TextChoices):
    DESK = "desk", "Entered by the office"
    AT_RISK_ACCOUNT = "at_risk_account", "At-risk account"
    AGEING_ASSET = "ageing_asset", "Ageing asset"
