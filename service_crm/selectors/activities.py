"""Reads for activities, follow-up tasks and the sales pipeline, each guarded by scope."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Prefetch, Q, QuerySet
from django.http import Http404

from service_crm.models import Account, FollowUpTask, Interaction, OfferLine
from service_crm.models.choices import OfferStatus
from service_crm.selectors.access import (
    GROUP_ROLES,
    interaction_list_for_account,
    offer_list_for_user,
    scope_for,
)
from service_crm.selectors.offers import offer_totals_get


def staff_users() -> QuerySet[Any]:
    """Who a task can be assigned to: active office staff (by group, or superusers)."""
    return (get_user_model().objects.filter(is_active=True)
            .filter(Q(is_superuser=True) | Q(groups__name__in=list(GROUP_ROLES)))
            .distinct().order_by("username"))


def timeline_for_account(*, user: Any, account: Account, kind: str = "") -> QuerySet[Interaction]:
    """The account's whole timeline, newest first, of one kind when given (page it)."""
    qs = interaction_list_for_account(user=user, account=account).select_related(
        "contact").order_by("-at", "-pk")
    return qs.filter(kind=kind) if kind else qs


def activity_list_for_user(*, user: Any) -> QuerySet[Interaction]:
    """Every timeline entry, for office staff (the API filters by account); nothing for
    others (the timeline holds internal notes)."""
    qs = Interaction.objects.select_related("by").order_by("-at", "-pk")
    return qs if scope_for(user=user).everything else qs.none()


def activity_get_for_user(*, user: Any, pk: Any) -> Interaction:
    found = activity_list_for_user(user=user).filter(pk=pk).first()
    if found is None:
        raise Http404("No such activity.")
    return found


def task_list_for_user(*, user: Any) -> QuerySet[FollowUpTask]:
    """Follow-up tasks: office staff see all of them; nobody else any."""
    qs = FollowUpTask.objects.select_related("account", "assignee", "contact").order_by(
        "due", "pk")
    return qs if scope_for(user=user).everything else qs.none()


def task_get_for_user(*, user: Any, pk: Any) -> FollowUpTask:
    task = task_list_for_user(user=user).filter(pk=pk).first()
    if task is None:
        raise Http404("No such task.")
    return task


# How likely an offer in each stage is to be won, for the weighted forecast.
STAGE_PROBABILITY_PCT = {OfferStatus.DRAFT: 10, OfferStatus.PENDING_APPROVAL: 25,
                         OfferStatus.SENT: 50}


@dataclass(frozen=True)
class PipelineRow:
    label: str
    count: int
    value: Decimal
    weighted: Decimal
    probability_pct: int | None = None


@dataclass(frozen=True)
class Pipeline:
    stages: list[PipelineRow]
    forecast: list[PipelineRow]  # open offers by the month they expire (decision due)
    won_90d: PipelineRow


def pipeline_get(*, user: Any, now: dt.datetime) -> Pipeline:
    """Open offers by stage with their value (after discount) and the value weighted by the
    stage's probability; the same by month of validity (when the decision is due); offers
    won in the last 90 days. Office staff only (others get an empty pipeline)."""
    if not scope_for(user=user).everything:
        user = None
    offers = list(offer_list_for_user(user=user).filter(
        Q(status__in=list(STAGE_PROBABILITY_PCT))
        | Q(status=OfferStatus.ACCEPTED, decided_at__gte=now - dt.timedelta(days=90)))
        .prefetch_related(Prefetch("lines", queryset=OfferLine.objects.order_by("pk"))))
    by_stage: dict[str, list[Decimal]] = defaultdict(list)
    by_month: dict[str, list[tuple[Decimal, Decimal]]] = defaultdict(list)
    won: list[Decimal] = []
    for o in offers:
        value = offer_totals_get(offer=o, lines=o.lines.all()).total
        if o.status == OfferStatus.ACCEPTED:
            won.append(value)
            continue
        weight = Decimal(STAGE_PROBABILITY_PCT[OfferStatus(o.status)]) / 100
        by_stage[o.status].append(value)
        by_month[f"{o.valid_until:%Y-%m}"].append((value, value * weight))
    cent = Decimal("0.01")
    stages = [PipelineRow(label=str(status.label), count=len(by_stage[status]),
                          value=sum(by_stage[status], Decimal(0)).quantize(cent),
                          weighted=(sum(by_stage[status], Decimal(0)) * pct / 100).quantize(cent),
                          probability_pct=pct)
              for status, pct in STAGE_PROBABILITY_PCT.items()]
    forecast = [PipelineRow(label=month, count=len(rows),
                            value=sum((v for v, _ in rows), Decimal(0)).quantize(cent),
                            weighted=sum((w for _, w in rows), Decimal(0)).quantize(cent))
                for month, rows in sorted(by_month.items())]
    return Pipeline(stages=stages, forecast=forecast,
                    won_90d=PipelineRow(label="Won, last 90 days", count=len(won),
                                        value=sum(won, Decimal(0)).quantize(cent),
                                        weighted=sum(won, Decimal(0)).quantize(cent)))
