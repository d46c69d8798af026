"""For the service CRM tests: alert events as the anomaly worker publishes them, for the
world's compressor (``tests.support.world``), a completed job, and running calls at once."""

from __future__ import annotations

import datetime as dt
import itertools
import threading
from collections.abc import Callable, Sequence
from typing import Any

from django.db import connection

from aftercare.events import AlertEvent, Evidence
from service_crm import models as m
from service_crm.models.choices import Outcome, Priority, TicketSource, WorkOrderStatus
from service_crm.services.tickets import ticket_open
from service_crm.services.work_orders import (
    PartUsed,
    work_order_complete,
    work_order_schedule,
    work_order_start,
)
from tests.support.world import NOW, World

H = dt.timedelta(hours=1)

_ids = itertools.count(1)


def race(calls: Sequence[Callable[[], Any]]) -> list[Any]:
    """Run every call at once, each in its own thread with its own database connection
    (released together by a barrier); return each call's result or the exception it raised,
    in the calls' order."""
    barrier = threading.Barrier(len(calls))
    outcomes: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        try:
            barrier.wait()
            outcomes[i] = calls[i]()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller as the outcome
            outcomes[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes


def make_event(device: str = "cmp-n1", *, alert_id: str | None = None, revision: int = 1,
               state: str = "open", severity: str = "warning",
               failure_mode: str = "bearing_wear", at: dt.datetime = NOW,
               detector: str = "zscore") -> AlertEvent:
    return AlertEvent(
        alert_id=alert_id or f"a-{next(_ids)}", revision=revision, state=state,  # type: ignore[arg-type]
        device=device, kind="equipment", severity=severity,  # type: ignore[arg-type]
        failure_mode=failure_mode, score=0.9, opened_at=at, at=at,
        evidence=(Evidence(metric="vibration_rms_mm_s", detector=detector, score=0.9,
                           value=7.1, baseline=2.8),),
        detectors={detector: 0.9},
    )


def completed_job(world: World, *, at: dt.datetime = NOW) -> m.WorkOrder:
    """A phone ticket on the world's compressor opened at ``at``, its work order booked for the
    next two hours, started an hour later, completed an hour after that: one bearing and an
    hour's labour, the fault confirmed (billable where no contract covers them)."""
    ticket = ticket_open(asset=world.asset, summary="Noise", source=TicketSource.PHONE,
                         priority=Priority.P3, now=at)
    wo = m.WorkOrder.objects.create(ticket=ticket, status=WorkOrderStatus.PROPOSED)
    work_order_schedule(work_order=wo, engineer=world.engineer, start=at + H, end=at + 3 * H,
                        actor=None, now=at)
    work_order_start(work_order=wo, actor=None, now=at + H)
    return work_order_complete(work_order=wo, actor=None, report="Fixed", time_spent_min=60,
                               outcome=Outcome.FAULT_CONFIRMED, now=at + 2 * H,
                               parts=[PartUsed(world.part, world.warehouse, 1)])
