"""For the service CRM tests: alert events as the anomaly worker publishes them, for the
world's compressor (``tests.support.world``), a completed job, and running calls at once."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Sequence
from typing import Any

from django.db import connection

from aftercare.events import AlertEvent
from service_crm import models as m
from service_crm.models.choices import Outcome, Priority, TicketSource, WorkOrderStatus
from service_crm.services.tickets import ticket_open
from service_crm.services.work_orders import (
    PartUsed,
    work_order_complete,
    work_order_schedule,
    work_order_start,
)
from tests import factories as f
from tests.support.world import NOW, World

H = dt.timedelta(hours=1)


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


def make_event(device: str = "cmp-n1", *, at: dt.datetime = NOW, **options: Any) -> AlertEvent:
    """:func:`tests.factories.alert_event` for the world's compressor at :data:`NOW` unless
    told otherwise."""
    return f.alert_event(device, at=at, **options)


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
