"""How often alerts pointed at real faults, per detector and failure mode: the one place the
verdicts (``AlertOutcome``) are counted into a precision."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, Q, QuerySet

from service_crm.models import AlertOutcome
from service_crm.models.choices import Outcome


def precision_of(confirmed: int, no_fault_found: int) -> float | None:
    """Confirmed / all verdicts; None when there is no verdict yet."""
    n = confirmed + no_fault_found
    return None if n == 0 else confirmed / n


@dataclass(frozen=True)
class Precision:
    detector: str
    failure_mode_code: str
    confirmed: int
    no_fault_found: int

    @property
    def precision(self) -> float | None:
        """Confirmed / all verdicts; None when there is no verdict yet."""
        return precision_of(self.confirmed, self.no_fault_found)


def alert_precision_list(*, detector: str | None = None,
                         outcomes: QuerySet[AlertOutcome] | None = None) -> list[Precision]:
    """Verdicts per (detector, failure mode), in that order: of ``outcomes`` (a caller's scoped
    set; default every verdict), of one ``detector`` if given."""
    rows = AlertOutcome.objects.all() if outcomes is None else outcomes
    if detector is not None:
        rows = rows.filter(detector=detector)
    agg = (rows.order_by().values("detector", "failure_mode_code")
           .annotate(confirmed=Count("pk", filter=Q(outcome=Outcome.FAULT_CONFIRMED)),
                     nff=Count("pk", filter=Q(outcome=Outcome.NO_FAULT_FOUND)))
           .order_by("detector", "failure_mode_code"))
    return [Precision(r["detector"], r["failure_mode_code"], r["confirmed"], r["nff"]) for r in agg]
