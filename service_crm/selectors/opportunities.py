"""Reads for the sales pipeline: opportunities (office staff only: commercial data), their
history, the weighted forecast, and the two places an opportunity can start from: an account at
risk (the at-risk report's signals) and an ageing asset (its age against its equipment model's
expected life).

**Forecast**: open opportunities (qualify, propose, negotiate); *weighted* = value x
probability / 100, summed by the month of the expected close and by stage, separately per
currency (values in different currencies are never added up).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db.models import (
    Count,
    DecimalField,
    ExpressionWrapper,
    F,
    FloatField,
    QuerySet,
    Sum,
)
from django.db.models.expressions import RawSQL
from django.db.models.functions import TruncMonth
from django.http import Http404

from service_crm.models import Account, Asset, AuditLog, Opportunity
from service_crm.models.choices import AssetStatus, OpportunityStage
from service_crm.models.opportunity import OPEN_STAGES, STAGE_PROBABILITY_PCT
from service_crm.selectors import access
from service_crm.selectors.access import scope_for

# An asset is ageing once it has used this share of its model's expected life.
AGEING_FRACTION = 0.8
DAYS_PER_YEAR = 365.25
CENT = Decimal("0.01")


def opportunity_list_for_user(*, user: Any) -> QuerySet[Opportunity]:
    """Every opportunity for office staff; nothing for engineers and customers."""
    qs = Opportunity.objects.select_related("account", "asset", "owner")
    return qs if scope_for(user=user).everything else qs.none()


def opportunity_get_for_user(*, user: Any, pk: Any) -> Opportunity:
    try:
        found = opportunity_list_for_user(user=user).filter(pk=pk).first()
    except (TypeError, ValueError):
        found = None
    if found is None:
        raise Http404(f"No opportunity {pk}.")
    return found


def opportunity_history(*, opportunity: Opportunity) -> QuerySet[AuditLog]:
    """The opportunity's audit entries, newest first (who moved it, when, from what)."""
    return AuditLog.objects.filter(object_type="opportunity",
                                   object_id=str(opportunity.pk)).order_by("-at", "-pk")


@dataclass(frozen=True)
class ForecastRow:
    label: str
    currency: str
    count: int
    value: Decimal
    weighted: Decimal


@dataclass(frozen=True)
class Forecast:
    by_month: list[ForecastRow]   # label "YYYY-MM" of the expected close, oldest first
    by_stage: list[ForecastRow]   # label = stage value, in pipeline order
    totals: list[ForecastRow]     # one per currency, label "total"


def _rows(qs: QuerySet[Any], key: str) -> list[tuple[Any, str, int, Decimal, Decimal]]:
    weighted = ExpressionWrapper(F("value") * F("probability_pct"),
                                 output_field=DecimalField(max_digits=20, decimal_places=2))
    rows = (qs.order_by().values(key, "currency")
            .annotate(n=Count("pk"), v=Sum("value"), w=Sum(weighted))
            .values_list(key, "currency", "n", "v", "w"))
    return [(k, cur, n, Decimal(v).quantize(CENT), (Decimal(w) / 100).quantize(CENT))
            for k, cur, n, v, w in rows]


def opportunity_forecast_get(*, user: Any, owner: Any | None = None) -> Forecast:
    """The weighted pipeline of the open opportunities the user may see (of one owner when
    given), by expected-close month and by stage, per currency; summed in the database."""
    qs = opportunity_list_for_user(user=user).filter(stage__in=OPEN_STAGES)
    if owner is not None:
        qs = qs.filter(owner=owner)
    months = _rows(qs.annotate(month=TruncMonth("expected_close")), "month")
    by_month = [ForecastRow(f"{m:%Y-%m}", cur, n, v, w)
                for m, cur, n, v, w in sorted(months, key=lambda r: (r[0], r[1]))]
    order = {s: i for i, s in enumerate(OPEN_STAGES)}
    stages = _rows(qs, "stage")
    by_stage = [ForecastRow(s, cur, n, v, w)
                for s, cur, n, v, w in sorted(stages, key=lambda r: (order[r[0]], r[1]))]
    totals: dict[str, list[Any]] = {}
    for r in by_stage:
        t = totals.setdefault(r.currency, [0, Decimal(0), Decimal(0)])
        t[0] += r.count
        t[1] += r.value
        t[2] += r.weighted
    return Forecast(by_month=by_month, by_stage=by_stage,
                    totals=[ForecastRow("total", cur, n, v, w)
                            for cur, (n, v, w) in sorted(totals.items())])


def stage_default_probability(stage: str) -> int:
    return STAGE_PROBABILITY_PCT[OpportunityStage(stage)]


# --- where an opportunity starts ----------------------------------------------------------

@dataclass(frozen=True)
class AssetAge:
    """How far an asset is through its equipment model's expected life."""

    age_days: int
    expected_life_years: int
    in_service: bool = True

    @property
    def age_years(self) -> float:
        return round(self.age_days / DAYS_PER_YEAR, 1)

    @property
    def used_pct(self) -> int:
        return round(100 * self.age_days / DAYS_PER_YEAR / self.expected_life_years)

    @property
    def ageing(self) -> bool:
        return self.in_service and self.age_days >= ageing_after_days(self.expected_life_years)

    @property
    def note(self) -> str:
        return (f"{self.age_years:.1f} of {self.expected_life_years} years' expected life "
                f"({self.used_pct} %)")


def asset_age_get(*, asset: Asset, on: dt.date) -> AssetAge:
    """The asset's age on day ``on`` against its model's expected life (ageing from
    ``AGEING_FRACTION`` of it). A decommissioned asset is never ageing: it is gone."""
    return AssetAge(age_days=max(0, (on - asset.install_date).days),
                    expected_life_years=asset.equipment_model.expected_life_years,
                    in_service=asset.status != AssetStatus.DECOMMISSIONED)


def ageing_after_days(expected_life_years: int) -> float:
    return AGEING_FRACTION * expected_life_years * DAYS_PER_YEAR


def asset_list_ageing(*, user: Any, on: dt.date) -> QuerySet[Asset]:
    """The in-service assets the user may see that are ageing on day ``on`` (the rule of
    :func:`asset_age_get`, in SQL) and have no open opportunity, oldest first."""
    age_days = RawSQL("(%s::date - service_crm_asset.install_date)", [on],
                      output_field=FloatField())
    threshold = ExpressionWrapper(
        F("equipment_model__expected_life_years") * AGEING_FRACTION * DAYS_PER_YEAR,
        output_field=FloatField())
    return (access.asset_list_for_user(user=user)
            .exclude(status=AssetStatus.DECOMMISSIONED)
            .annotate(age_days=age_days).filter(age_days__gte=threshold)
            .exclude(pk__in=Opportunity.objects.filter(stage__in=OPEN_STAGES, asset__isnull=False)
                     .values("asset_id"))
            .order_by("install_date", "pk"))


def account_risk_get(*, account: Account, now: dt.datetime) -> tuple[int, list[str]]:
    """The account's risk score (0 = nothing at risk) and its reasons, as the at-risk report
    and the account health work them out (one definition)."""
    from service_crm.selectors.reports import account_health_get_many

    risk = account_health_get_many(user=None, now=now, account_ids=[account.pk]).get(account.pk)
    return (0, []) if risk is None else (risk.score, risk.reasons)
