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


def webhook_allow_http() -> bool:
    """Allow plain http:// webhook receivers (tests, a receiver on the same host)."""
    return bool(getattr(settings, "AFTERCARE_WEBHOOK_ALLOW_HTTP", False))


def webhook_max_attempts() -> int:
    """Attempts before a delivery is given up (it can still be replayed)."""
    return int(getattr(settings, "AFTERCARE_WEBHOOK_MAX_ATTEMPTS", 12))


def webhook_backoff(attempts: int) -> dt.timedelta:
    """Wait after the ``attempts``-th failure: 30 s doubling per attempt, at most 6 h."""
    base = float(getattr(settings, "AFTERCARE_WEBHOOK_BACKOFF_S", 30))
    return dt.timedelta(seconds=min(base * 2 ** max(0, attempts - 1), 6 * 3600))


def webhook_timeout_s() -> float:
    return float(getattr(settings, "AFTERCARE_WEBHOOK_TIMEOUT_S", 5))


def default_phone_region() -> str:
    """Country a phone number without ``+`` is read in when the account has no site."""
    return str(getattr(settings, "AFTERCARE_DEFAULT_PHONE_REGION", "DE"))


def currency() -> str:
    """ISO 4217 code every price in offers and orders is in (one currency per installation)."""
    return str(getattr(settings, "AFTERCARE_CURRENCY", "EUR"))


def public_url() -> str:
    """Where customers reach the web app, for links in emails (no trailing slash)."""
    return str(getattr(settings, "AFTERCARE_PUBLIC_URL", "")
               or f"http://127.0.0.1:{getattr(settings, 'AFTERCARE_WEB_PORT', 8000)}").rstrip("/")
