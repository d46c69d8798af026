"""How often alerts pointed at real faults, per detector and failure mode."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, Q

from service_crm.models import AlertOutcome
from service_crm.models.choices import Outcome


@dataclass(frozen=True)
class Precision:
    detector: str
    failure_mode_code: str
    confirmed: int
    no_fault_found: int

    @property
    def precision(self) -> float | None:
        """Confirmed / all verdicts; None when there is no verdict yet."""
        n = self.confirmed + self.no_fault_found
        return None if n == 0 else self.confirmed / n


def alert_precision_list(*, detector: str | None = None) -> list[Precision]:
    rows = AlertOutcome.objects.all()
    if detector is not None:
        rows = rows.filter(detector=detector)
    agg = (rows.values("detector", "failure_mode_code")
           .annotate(confirmed=Count("pk", filter=Q(outcome=Outcome.FAULT_CONFIRMED)),
                     nff=Count("pk", filter=Q(outcome=Outcome.NO_FAULT_FOUND)))
           .order_by("detector", "failure_mode_code"))
    return [Precision(r["detector"], r["failure_mode_code"], r["confirmed"], r["nff"]) for r in agg]
