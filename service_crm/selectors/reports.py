"""Management reports and the dashboard's fleet-health figures, over what the user may see.

Every function starts from the guarded selectors in :mod:`service_crm.selectors.access`, so a
report never counts a ticket, asset or account outside the user's scope. The figures are
aggregated in the database (one query per figure set, no loop over rows in Python).

Definitions (the reports page repeats them next to each chart):

- **SLA compliance**: tickets *resolved* in the window, grouped by the ISO week (Monday, UTC)
  of their resolution. A ticket with a resolution target met it unless ``resolution_breached``;
  the response target likewise with ``response_breached``. Tickets without the target (no
  contract SLA) are not counted for that target.
- **MTBF per equipment model**: mean operating time between confirmed failures,
  ``(in-service hours - repair hours) / confirmed failures`` over the window, where
  *in-service hours* sum, over the model's assets that are not decommissioned, the time from
  ``max(install_date, window start)`` to now; a *confirmed failure* is a ticket on such an
  asset opened in the window whose outcome is ``fault_confirmed``; *repair hours* are those
  tickets' open-to-resolved time (open ones to now). ``None`` when there is no failure.
- **Alert precision per detector**: confirmed / (confirmed + no fault found) over the verdicts
  recorded on tickets the user may see.
- **At-risk accounts**: a risk score of 0..100 (higher = more at risk) summed from capped
  signals, each also given as a reason: SLA breaches in the last 90 days (10 points each, at
  most 40), open critical episodes (15 each, at most 30), assets with two or more confirmed
  failures in 180 days (10 each, at most 30), a contract ending within 90 days that is neither
  renewed nor auto-renewing (20).
  An account's *health* on every desk page is 100 minus this score.
- **Fleet health** of an asset (first that applies): *critical* (asset down, or a live
  critical episode), *warning* (a live warning or info episode), *device problem* (an open
  device-kind alert, or a live episode raised by device-kind alerts only: those do not count
  as critical or warning), *offline* (one of its devices reports offline), else *ok*.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django.db.models import (
    Case,
    CharField,
    Count,
    DurationField,
    Exists,
    ExpressionWrapper,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce, Greatest, TruncWeek

from service_crm.models import (
    Account,
    Alert,
    AlertOutcome,
    Asset,
    DeviceLink,
    Episode,
    EquipmentModel,
    MaintenanceContract,
    Ticket,
)
from service_crm.models.choices import (
    AlertState,
    AssetStatus,
    EpisodeStatus,
    Outcome,
    RenewalStatus,
    Severity,
)
from service_crm.selectors import access
from service_crm.selectors.outcomes import Precision, alert_precision_list, precision_of

LIVE_EPISODE = (EpisodeStatus.OPEN, EpisodeStatus.WATCHING)
HEALTH_STATES = ("ok", "warning", "critical", "device_problem", "offline")


def _check_window(days: int) -> None:
    if not isinstance(days, int) or isinstance(days, bool) or days < 1 or days > 3660:
        raise ValueError(f"`days` must be an integer from 1 to 3660, got {days!r}")


def _check_now(now: dt.datetime) -> None:
    if now.tzinfo is None:
        raise ValueError("`now` must be timezone-aware")


def _count(qs: QuerySet[Any], *, ref: str) -> Subquery:
    """COUNT(*) of ``qs`` rows grouped on the outer ref ``ref`` (a scalar subquery, so joins
    on the outer query cannot multiply the count)."""
    return Subquery(qs.order_by().values(ref).annotate(c=Count("pk")).values("c")[:1],
                    output_field=IntegerField())


# --- SLA compliance -----------------------------------------------------------------------

@dataclass(frozen=True)
class SlaWeek:
    """One week of resolved tickets: how many met or breached each SLA target."""

    week_start: dt.date
    response_met: int
    response_breached: int
    resolution_met: int
    resolution_breached: int


@dataclass(frozen=True)
class SlaCompliance:
    weeks: list[SlaWeek]
    days: int

    @property
    def resolution_total(self) -> int:
        return sum(w.resolution_met + w.resolution_breached for w in self.weeks)

    @property
    def resolution_breached(self) -> int:
        return sum(w.resolution_breached for w in self.weeks)

    @property
    def response_total(self) -> int:
        return sum(w.response_met + w.response_breached for w in self.weeks)

    @property
    def response_breached(self) -> int:
        return sum(w.response_breached for w in self.weeks)

    @staticmethod
    def _pct(total: int, breached: int) -> float | None:
        return None if total == 0 else round(100 * (total - breached) / total, 1)

    @property
    def resolution_met_pct(self) -> float | None:
        return self._pct(self.resolution_total, self.resolution_breached)

    @property
    def response_met_pct(self) -> float | None:
        return self._pct(self.response_total, self.response_breached)


def sla_compliance_by_week(*, user: Any, now: dt.datetime, days: int = 90) -> SlaCompliance:
    """Tickets resolved in the last ``days``, per ISO week of resolution (every week of the
    window listed, empty ones as zeros), scoped to the tickets ``user`` may see."""
    _check_window(days)
    _check_now(now)
    since = now - dt.timedelta(days=days)
    rows = (access.ticket_list_for_user(user=user)
            .filter(resolved_at__gte=since, resolved_at__lte=now)
            .annotate(week=TruncWeek("resolved_at", tzinfo=dt.UTC))
            .order_by().values("week")
            .annotate(
                resp_met=Count("pk", filter=Q(response_due__isnull=False,
                                              response_breached=False)),
                resp_bad=Count("pk", filter=Q(response_due__isnull=False,
                                              response_breached=True)),
                res_met=Count("pk", filter=Q(resolution_due__isnull=False,
                                             resolution_breached=False)),
                res_bad=Count("pk", filter=Q(resolution_due__isnull=False,
                                             resolution_breached=True))))
    by_week = {r["week"].date(): r for r in rows}
    first = since.astimezone(dt.UTC).date()
    week = first - dt.timedelta(days=first.weekday())
    last = now.astimezone(dt.UTC).date()
    weeks: list[SlaWeek] = []
    while week <= last:
        r = by_week.get(week, {})
        weeks.append(SlaWeek(week, int(r.get("resp_met", 0)), int(r.get("resp_bad", 0)),
                             int(r.get("res_met", 0)), int(r.get("res_bad", 0))))
        week += dt.timedelta(days=7)
    return SlaCompliance(weeks=weeks, days=days)


# --- MTBF per equipment model -------------------------------------------------------------

@dataclass(frozen=True)
class ModelReliability:
    """Mean time between confirmed failures of one equipment model over the window."""

    equipment_model_id: int
    name: str
    assets: int
    in_service_h: float
    repair_h: float
    failures: int

    @property
    def operating_h(self) -> float:
        return max(0.0, self.in_service_h - self.repair_h)

    @property
    def mtbf_h(self) -> float | None:
        """Operating hours per confirmed failure; None without a failure in the window."""
        return None if self.failures == 0 else self.operating_h / self.failures

    @property
    def mtbf_days(self) -> float | None:
        h = self.mtbf_h
        return None if h is None else round(h / 24, 1)


def mtbf_by_equipment_model(*, user: Any, now: dt.datetime,
                            days: int = 365) -> list[ModelReliability]:
    """MTBF per equipment model (definition in the module docstring), over the assets and
    tickets ``user`` may see; models without an in-service asset are left out. Shortest MTBF
    (least reliable) first, models without failures last."""
    _check_window(days)
    _check_now(now)
    since = now - dt.timedelta(days=days)
    today = now.astimezone(dt.UTC).date()
    assets = (access.asset_list_for_user(user=user)
              .exclude(status=AssetStatus.DECOMMISSIONED)
              .filter(install_date__lte=today))
    span = ExpressionWrapper(
        Value(today) - Greatest(F("install_date"), Value(since.astimezone(dt.UTC).date())),
        output_field=DurationField())
    service = {r["equipment_model"]: r for r in (
        assets.order_by().values("equipment_model")
        .annotate(n=Count("pk"), in_service=Sum(span)))}
    repair = ExpressionWrapper(Coalesce(F("resolved_at"), Value(now)) - F("opened_at"),
                               output_field=DurationField())
    failures = {r["asset__equipment_model"]: r for r in (
        access.ticket_list_for_user(user=user)
        .filter(asset__in=assets.values("pk"), outcome=Outcome.FAULT_CONFIRMED,
                opened_at__gte=since, opened_at__lte=now)
        .order_by().values("asset__equipment_model")
        .annotate(n=Count("pk"), repair=Sum(repair)))}
    names = dict(EquipmentModel.objects.filter(pk__in=list(service))
                 .values_list("pk", "name"))
    out = []
    for model_id, s in service.items():
        f = failures.get(model_id, {})
        in_service: dt.timedelta = s["in_service"] or dt.timedelta(0)
        rep: dt.timedelta = f.get("repair") or dt.timedelta(0)
        out.append(ModelReliability(
            equipment_model_id=model_id, name=names.get(model_id, "?"), assets=s["n"],
            in_service_h=in_service.total_seconds() / 3600,
            repair_h=rep.total_seconds() / 3600, failures=int(f.get("n", 0))))
    out.sort(key=lambda r: (r.mtbf_h is None, r.mtbf_h or 0.0, r.name))
    return out


# --- alert precision ----------------------------------------------------------------------

@dataclass(frozen=True)
class DetectorPrecision:
    """Precision of one detector over all failure modes, and its breakdown."""

    detector: str
    confirmed: int
    no_fault_found: int
    by_failure_mode: list[Precision] = field(default_factory=list)

    @property
    def precision(self) -> float | None:
        return precision_of(self.confirmed, self.no_fault_found)

    @property
    def precision_pct(self) -> float | None:
        p = self.precision
        return None if p is None else round(100 * p, 1)


def alert_precision_by_detector(*, user: Any) -> list[DetectorPrecision]:
    """Verdicts on tickets ``user`` may see, per detector (and failure mode), by name."""
    grouped: dict[str, list[Precision]] = {}
    for p in alert_precision_list(outcomes=AlertOutcome.objects.filter(
            ticket__in=access.ticket_list_for_user(user=user).values("pk"))):
        grouped.setdefault(p.detector, []).append(p)
    return [DetectorPrecision(detector=d, confirmed=sum(p.confirmed for p in ps),
                              no_fault_found=sum(p.no_fault_found for p in ps),
                              by_failure_mode=ps)
            for d, ps in grouped.items()]


# --- at-risk accounts ---------------------------------------------------------------------

@dataclass(frozen=True)
class AccountRisk:
    """Why an account needs attention: each signal, its points, and the total."""

    account_id: int
    name: str
    sla_breaches_90d: int
    open_critical_episodes: int
    repeat_failure_assets: int
    expiring_contracts: int

    @property
    def points(self) -> dict[str, int]:
        return {
            "sla": min(10 * self.sla_breaches_90d, 40),
            "critical": min(15 * self.open_critical_episodes, 30),
            "repeat": min(10 * self.repeat_failure_assets, 30),
            "renewal": 20 if self.expiring_contracts else 0,
        }

    @property
    def score(self) -> int:
        return min(100, sum(self.points.values()))

    @property
    def health(self) -> int:
        """Account health, 100 = nothing wrong: the same signals as the risk score, so every
        page that shows an account's health agrees with the at-risk report."""
        return 100 - self.score

    @property
    def reasons(self) -> list[str]:
        out = []
        if self.sla_breaches_90d:
            out.append(f"{self.sla_breaches_90d} SLA breach"
                       f"{'es' if self.sla_breaches_90d != 1 else ''} in 90 days")
        if self.open_critical_episodes:
            out.append(f"{self.open_critical_episodes} open critical episode"
                       f"{'s' if self.open_critical_episodes != 1 else ''}")
        if self.repeat_failure_assets:
            out.append(f"{self.repeat_failure_assets} asset"
                       f"{'s' if self.repeat_failure_assets != 1 else ''} with repeated "
                       "confirmed failures (180 days)")
        if self.expiring_contracts:
            out.append("contract ends within 90 days, not renewed")
        return out


def _at_risk_rows(*, user: Any, now: dt.datetime) -> QuerySet[Any]:
    """Accounts ``user`` may see with a risk score above 0, annotated with each signal."""
    return _risk_rows(user=user, now=now).filter(
        Q(sla__gt=0) | Q(crit__gt=0) | Q(repeat__gt=0) | Q(expiring__gt=0))


def _risk_rows(*, user: Any | None, now: dt.datetime) -> QuerySet[Any]:
    """Accounts ``user`` may see (every account for ``None``: the housekeeping, the API's
    and the admin's stored figure), each annotated with the at-risk signals."""
    _check_now(now)
    today = now.astimezone(dt.UTC).date()
    if user is None:
        tickets: QuerySet[Any] = Ticket.objects.all()
        episodes: QuerySet[Any] = Episode.objects.all()
        assets: QuerySet[Any] = Asset.objects.all()
        contracts: QuerySet[Any] = MaintenanceContract.objects.all()
        accounts: QuerySet[Any] = Account.objects.all()
    else:
        tickets = access.ticket_list_for_user(user=user)
        episodes = access.episode_list_for_user(user=user)
        assets = access.asset_list_for_user(user=user)
        contracts = access.contract_list_for_user(user=user)
        accounts = access.account_list_for_user(user=user)
    breaches = tickets.filter(Q(response_breached=True) | Q(resolution_breached=True),
                              account=OuterRef("pk"),
                              opened_at__gte=now - dt.timedelta(days=90))
    critical = episodes.filter(
        asset__site__account=OuterRef("pk"), status=EpisodeStatus.OPEN,
        peak_severity=Severity.CRITICAL)
    # Assets with two or more confirmed failures: one grouped set, not a count per asset.
    repeat_ids = (tickets.filter(outcome=Outcome.FAULT_CONFIRMED,
                                 opened_at__gte=now - dt.timedelta(days=180))
                  .order_by().values("asset_id").annotate(n=Count("pk")).filter(n__gte=2)
                  .values("asset_id"))
    repeat_assets = assets.filter(
        site__account=OuterRef("pk"), pk__in=repeat_ids)
    expiring = contracts.filter(
        account=OuterRef("pk"), end__gte=today, end__lte=today + dt.timedelta(days=90),
        auto_renew=False).exclude(
        renewal_status__in=[RenewalStatus.RENEWED, RenewalStatus.LAPSED])
    annotated: QuerySet[Any] = (accounts
            .annotate(sla=Coalesce(_count(breaches, ref="account"), 0),
                      crit=Coalesce(_count(critical, ref="asset__site__account"), 0),
                      repeat=Coalesce(_count(repeat_assets, ref="site__account"), 0),
                      expiring=Coalesce(_count(expiring, ref="account"), 0)))
    return annotated


def account_list_at_risk(*, user: Any, now: dt.datetime, limit: int = 20) -> list[AccountRisk]:
    """Accounts ``user`` may see with a risk score above 0, highest first (then by name)."""
    if limit < 1:
        raise ValueError(f"`limit` must be >= 1, got {limit}")
    rows = _at_risk_rows(user=user, now=now).values_list(
        "pk", "name", "sla", "crit", "repeat", "expiring")
    risks = [AccountRisk(*r) for r in rows]
    risks.sort(key=lambda a: (-a.score, a.name))
    return risks[:limit]


def account_health_get_many(*, user: Any | None, now: dt.datetime,
                            account_ids: list[int]) -> dict[int, AccountRisk]:
    """The at-risk signals of the given accounts (those ``user`` may see), by account id;
    ``.health`` is the account health every desk page shows (one definition)."""
    rows = _risk_rows(user=user, now=now).filter(pk__in=account_ids).values_list(
        "pk", "name", "sla", "crit", "repeat", "expiring")
    return {r[0]: AccountRisk(*r) for r in rows}


def account_count_at_risk(*, user: Any, now: dt.datetime) -> int:
    """How many accounts :func:`account_list_at_risk` would list with no limit (the
    dashboard's "accounts at risk" tile: one definition for both)."""
    return int(_at_risk_rows(user=user, now=now).count())


# --- fleet health (dashboard) -------------------------------------------------------------

@dataclass(frozen=True)
class FleetHealth:
    """How many of the user's in-service assets are in each health state."""

    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def fleet_health_get(*, user: Any) -> FleetHealth:
    """Assets (not decommissioned) the user may see, by health state (module docstring).

    Each state is an uncorrelated ``asset_id IN (...)`` set (live episodes, open device
    alerts, offline devices are few next to the fleet), which PostgreSQL hashes once; per-asset
    EXISTS subqueries cost about a second on 10,000 assets (bench/bench_reports.py)."""
    episode_alerts = Alert.objects.filter(episode=OuterRef("pk"))
    # An episode opened by device-kind alerts only (sensor fault, comms) is a device problem,
    # not a machine problem.
    device_only = Q(Exists(episode_alerts.filter(kind="device"))) & ~Q(
        Exists(episode_alerts.exclude(kind="device")))
    live_all = access.episode_list_for_user(user=user).filter(status__in=LIVE_EPISODE)
    live = live_all.exclude(device_only)
    device_alerts = (access.alert_list_for_user(user=user).filter(kind="device")
                     .exclude(state=AlertState.CLEAR).exclude(asset__isnull=True))
    # The store's `devices` table is not a Django model: read its offline keys as SQL.
    offline_links = DeviceLink.objects.filter(device_key__in=RawSQL(  # noqa: S611 - constant SQL
        f"SELECT device_key FROM devices d WHERE {access.DEVICE_STATE_SQL} = 'offline'", []))

    def among(qs: QuerySet[Any], field: str = "asset_id") -> Q:
        return Q(pk__in=qs.order_by().values(field))

    state = Case(
        When(Q(status=AssetStatus.DOWN) | among(live.filter(peak_severity=Severity.CRITICAL)),
             then=Value("critical")),
        When(among(live), then=Value("warning")),
        When(among(offline_links), then=Value("offline")),
        When(among(device_alerts) | among(live_all.filter(device_only)),
             then=Value("device_problem")),
        default=Value("ok"), output_field=CharField())
    rows = (access.asset_list_for_user(user=user)
            .exclude(status=AssetStatus.DECOMMISSIONED)
            .annotate(health=state).order_by().values("health").annotate(n=Count("pk")))
    counts = dict.fromkeys(HEALTH_STATES, 0)
    for r in rows:
        counts[r["health"]] = int(r["n"])
    return FleetHealth(counts=counts)

