"""Tunables of the service automation: Django settings ``AFTERCARE_*``, each declared with its
default and validated once in ``aftercare.config.VARIABLES`` (set from the environment by
``web/settings.py``; no default is restated here).

Read through functions, not module constants, so ``override_settings`` in tests takes effect.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.conf import settings


def watch_period() -> dt.timedelta:
    """How long an episode is watched after its repair before it counts as fixed."""
    return dt.timedelta(hours=float(settings.AFTERCARE_WATCH_PERIOD_H))


def labour_rate() -> Decimal:
    """Price of one engineer hour in offers (EUR)."""
    return Decimal(str(settings.AFTERCARE_LABOUR_RATE_EUR))


def discount_approval_pct() -> Decimal:
    """Offer discounts above this percentage need a manager's approval."""
    return Decimal(str(settings.AFTERCARE_DISCOUNT_APPROVAL_PCT))


def offer_valid_days() -> int:
    return int(settings.AFTERCARE_OFFER_VALID_DAYS)


def desk_email() -> str:
    return str(settings.AFTERCARE_DESK_EMAIL)


def from_email() -> str:
    return str(settings.DEFAULT_FROM_EMAIL)


def sla_at_risk_fraction() -> float:
    """A ticket is at risk once less than this fraction of its resolution time is left."""
    return float(settings.AFTERCARE_SLA_AT_RISK_FRACTION)


def webhook_allow_http() -> bool:
    """Allow plain http:// webhook receivers (tests, a receiver on the same host)."""
    return bool(settings.AFTERCARE_WEBHOOK_ALLOW_HTTP)


def webhook_max_attempts() -> int:
    """Attempts before a delivery is given up (it can still be replayed)."""
    return int(settings.AFTERCARE_WEBHOOK_MAX_ATTEMPTS)


def webhook_backoff(attempts: int) -> dt.timedelta:
    """Wait after the ``attempts``-th failure: 30 s doubling per attempt, at most 6 h."""
    base = float(settings.AFTERCARE_WEBHOOK_BACKOFF_S)
    return dt.timedelta(seconds=min(base * 2 ** max(0, attempts - 1), 6 * 3600))


def webhook_timeout_s() -> float:
    return float(settings.AFTERCARE_WEBHOOK_TIMEOUT_S)


def default_phone_region() -> str:
    """Country a phone number without ``+`` is read in when the account has no site."""
    return str(settings.AFTERCARE_DEFAULT_PHONE_REGION)


def currency() -> str:
    """ISO 4217 code every price in offers and orders is in (one currency per installation)."""
    return str(settings.AFTERCARE_CURRENCY)


def public_url() -> str:
    """Where customers reach the web app, for links in emails (no trailing slash)."""
    return str(settings.AFTERCARE_PUBLIC_URL
               or f"http://127.0.0.1:{settings.AFTERCARE_WEB_PORT}").rstrip("/")


def planned_horizon_days() -> int:
    """How far ahead planned visits become work orders."""
    return int(settings.AFTERCARE_PLANNED_HORIZON_DAYS)


def login_window_s() -> int:
    """Idle seconds after which failed log-ins are forgotten."""
    return int(settings.AFTERCARE_LOGIN_WINDOW_S)


def dashboard_cache_s() -> float:
    """Seconds the desk dashboard's fleet counts are cached for all users (0 = off)."""
    return float(settings.AFTERCARE_DASHBOARD_CACHE_S)


def dashboard_poll_s() -> float:
    """How often an open desk dashboard refreshes."""
    return float(settings.AFTERCARE_DASHBOARD_POLL_S)
