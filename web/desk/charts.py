"""Chart specifications for static/chart.js's bar charts, built from the report selectors'
figures (presentation only: labels, colours, which series pile up)."""

from __future__ import annotations

from typing import Any

from service_crm.models.choices import OpportunityStage
from service_crm.selectors.opportunities import Forecast, ForecastRow
from service_crm.selectors.reports import (
    HEALTH_STATES,
    AccountRisk,
    DetectorPrecision,
    FleetHealth,
    ModelReliability,
    SlaCompliance,
)

OK, WARN, BAD, GREY, BLUE, PURPLE = "#1a7f37", "#b7791f", "#b42318", "#6b7c8f", "#0b6bcb", "#6941c6"
HEALTH_LABELS = {"ok": "OK", "warning": "Warning", "critical": "Critical",
                 "device_problem": "Device problem", "offline": "Offline"}
HEALTH_COLORS = {"ok": OK, "warning": WARN, "critical": BAD, "device_problem": PURPLE,
                 "offline": GREY}
SEVERITY_COLORS = {"critical": BAD, "warning": WARN, "info": BLUE}


def fleet_chart(fleet: FleetHealth) -> dict[str, Any]:
    return {"labels": [HEALTH_LABELS[s] for s in HEALTH_STATES], "keys": list(HEALTH_STATES),
            "colors": [HEALTH_COLORS[s] for s in HEALTH_STATES], "horizontal": True,
            "integer": True,
            "series": [{"label": "assets", "values": [fleet.counts[s] for s in HEALTH_STATES]}]}


def severity_chart(by_severity: dict[str, int]) -> dict[str, Any]:
    keys = list(by_severity)
    return {"labels": [k.capitalize() for k in keys], "keys": keys, "horizontal": True,
            "integer": True,
            "colors": [SEVERITY_COLORS.get(k, GREY) for k in keys],
            "series": [{"label": "episodes", "values": [by_severity[k] for k in keys]}]}


def sla_charts(sla: SlaCompliance) -> dict[str, dict[str, Any]]:
    labels = [w.week_start.strftime("%d %b") for w in sla.weeks]
    return {
        "resolution": {"labels": labels, "stacked": True, "integer": True, "series": [
            {"label": "Resolution met", "key": "resolution_met", "color": OK,
             "values": [w.resolution_met for w in sla.weeks]},
            {"label": "Resolution breached", "key": "resolution_breached", "color": BAD,
             "values": [w.resolution_breached for w in sla.weeks]}]},
        "response": {"labels": labels, "stacked": True, "integer": True, "series": [
            {"label": "Response met", "key": "response_met", "color": OK,
             "values": [w.response_met for w in sla.weeks]},
            {"label": "Response breached", "key": "response_breached", "color": BAD,
             "values": [w.response_breached for w in sla.weeks]}]},
    }


def mtbf_chart(rows: list[ModelReliability]) -> dict[str, Any]:
    with_failures = [r for r in rows if r.mtbf_days is not None]
    return {"labels": [r.name for r in with_failures], "horizontal": True, "unit": " d",
            "totals": False,
            "series": [{"label": "MTBF (days)", "color": BLUE,
                        "values": [r.mtbf_days for r in with_failures]}]}


def precision_chart(rows: list[DetectorPrecision]) -> dict[str, Any]:
    judged = [r for r in rows if r.precision_pct is not None]
    return {"labels": [r.detector for r in judged], "unit": " %", "max": 100, "totals": False,
            "series": [{"label": "Precision (confirmed / all verdicts)", "color": BLUE,
                        "values": [r.precision_pct for r in judged]}]}


def risk_chart(rows: list[AccountRisk]) -> dict[str, Any]:
    parts = (("sla", "SLA breaches", BAD), ("critical", "Critical episodes", WARN),
             ("repeat", "Repeated failures", PURPLE), ("renewal", "Contract ending", GREY))
    return {"labels": [r.name for r in rows], "horizontal": True, "stacked": True,
            "max": 100, "totals": False,
            "series": [{"label": label, "key": key, "color": color,
                        "values": [r.points[key] for r in rows]} for key, label, color in parts]}


def forecast_charts(fc: Forecast, *, currency: str) -> dict[str, dict[str, Any]]:
    """The pipeline in one currency, by expected-close month and by stage: each bar is the
    value, its blue part the weighted value (value x probability)."""

    def bars(rows: list[ForecastRow], labels: list[str], *, per: int = 1,
             **spec: Any) -> dict[str, Any]:
        return {"labels": labels, "stacked": True, **spec, "series": [
            {"label": "Weighted", "key": "weighted", "color": BLUE,
             "values": [float(r.weighted) / per for r in rows]},
            {"label": "Rest of the value", "key": "unweighted", "color": GREY,
             "values": [float(r.value - r.weighted) / per for r in rows]}]}

    months = [r for r in fc.by_month if r.currency == currency]
    stages = [r for r in fc.by_stage if r.currency == currency]
    # The upright chart's value axis is narrow: thousands, so "250 k" fits where
    # "250000 EUR" would be cut.
    return {"month": bars(months, [r.label for r in months], per=1000, unit=" k"),
            "stage": bars(stages, [str(OpportunityStage(r.label).label) for r in stages],
                          horizontal=True, unit=f" {currency}")}
