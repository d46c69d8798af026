"""Tunables of the service automation, overridable in Django settings (``AFTERCARE_*``).

Read through functions, not module constants, so ``override_settings`` in tests takes effect.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.conf import settings


def watch_period() -> dt.timedelta:
    """How long an episode is watched after its repair before it counts as fixed."""
    return dt.timedelta(hours=float(getattr(settings, "AFTERCARE_WATCH_PERIOD_H", 72)))


def labour_rate() -> Decimal:
    """Price of one engineer hour in offers (EUR)."""
    return Decimal(str(getattr(settings, "AFTERCARE_LABOUR_RATE_EUR", "95.00")))


def discount_approval_pct() -> Decimal:
    """Offer discounts above this percentage need a manager's approval."""
    return Decimal(str(getattr(settings, "AFTERCARE_DISCOUNT_APPROVAL_PCT", "10")))


def offer_valid_days() -> int:
    return int(getattr(settings, "AFTERCARE_OFFER_VALID_DAYS", 30))


def desk_email() -> str:
    return str(getattr(settings, "AFTERCARE_DESK_EMAIL", "service-desk@aftercare.local"))


def from_email() -> str:
    return str(getattr(settings, "DEFAULT_FROM_EMAIL", "aftercare@localhost"))


def sla_at_risk_fraction() -> float:
    """A ticket is at risk once less than this fraction of its resolution time is left."""
    return float(getattr(settings, "AFTERCARE_SLA_AT_RISK_FRACTION", 0.25))
