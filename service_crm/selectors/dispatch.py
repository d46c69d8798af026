"""The dispatch board: engineers by day, the jobs waiting for one, and what is wrong with a
booking (after the ticket's resolution deadline, overlapping another job, during an absence,
without the skill, outside the engineer's region)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Q

from service_crm.models import Engineer, WorkOrder
from service_crm.models.choices import WorkOrderStatus
from service_crm.selectors import access

W = WorkOrderStatus
BOOKED = (W.SCHEDULED, W.IN_PROGRESS)
MAX_DAYS = 14
WAITING_SHOWN = 50  # the most urgent waiting jobs, each with its booking form


def work_order_skill(wo: WorkOrder) -> str:
    """The skill a job needs: its failure mode's, else the machine's equipment type (the rule
    the automation proposes engineers by)."""
    episode = wo.ticket.episode
    fm = episode.failure_mode if episode is not None else None
    return fm.required_skill if fm is not None else wo.ticket.asset.equipment_model.equipment_type


@dataclass
class Booking:
    """A job on the board with the conflicts the desk should see before the visit."""

    work_order: WorkOrder
    skill: str
    conflicts: list[str] = field(default_factory=list)


@dataclass
class EngineerRow:
    engineer: Engineer
    days: list[list[Booking]]
    absent: list[bool]

    @property
    def cells(self) -> list[tuple[list[Booking], bool]]:
        return list(zip(self.days, self.absent, strict=True))


@dataclass
class WaitingJob:
    """A proposed job, or one booked without an engineer: who in its region has its skill."""

    booking: Booking
    candidates: list[Engineer]


@dataclass(frozen=True)
class DispatchBoard:
    days: list[dt.date]
    rows: list[EngineerRow]
    waiting: list[WaitingJob]
    regions: list[str]
    skills: list[str]
    conflicts: int
    waiting_total: int = 0


def _booking_conflicts(b: Booking, *, engineer: Engineer | None,
                       absences: list[tuple[dt.datetime, dt.datetime]]) -> None:
    wo = b.work_order
    ticket = wo.ticket
    if (wo.scheduled_end is not None and ticket.resolution_due is not None
            and wo.scheduled_end > ticket.resolution_due):
        b.conflicts.append(f"ends after {ticket.number}'s resolution deadline "
                           f"{ticket.resolution_due:%a %H:%M} UTC")
    if engineer is None:
        return
    if b.skill and b.skill not in engineer.skills:
        b.conflicts.append(f"{engineer.name} lacks the skill {b.skill}")
    region = ticket.asset.site.region
    if region != engineer.region:
        b.conflicts.append(f"site in {region}, {engineer.name} works in {engineer.region}")
    if wo.scheduled_start is not None and wo.scheduled_end is not None and any(
            s < wo.scheduled_end and e > wo.scheduled_start for s, e in absences):
        b.conflicts.append(f"{engineer.name} is absent then")


def dispatch_filter_choices() -> tuple[list[str], list[str]]:
    """The regions and skills the board can be narrowed by (those engineers have)."""
    rows = list(Engineer.objects.values_list("region", "skills"))
    return sorted({r for r, _ in rows}), sorted({s for _, skills in rows for s in skills})


def dispatch_board_get(*, user: Any, start: dt.date, days: int, region: str = "",
                       skill: str = "") -> DispatchBoard:
    """Engineers (of ``region``, with ``skill``, when given) by UTC day from ``start`` for
    ``days`` days with their bookings, and the jobs waiting for an engineer."""
    if not 1 <= days <= MAX_DAYS:
        raise ValueError(f"`days` must be 1..{MAX_DAYS}, got {days}")
    day_list = [start + dt.timedelta(days=i) for i in range(days)]
    t0 = dt.datetime.combine(start, dt.time(), tzinfo=dt.UTC)
    t1 = t0 + dt.timedelta(days=days)
    engineers_qs = Engineer.objects.filter(available=True).order_by("region", "name")
    all_regions, all_skills = dispatch_filter_choices()
    if region:
        engineers_qs = engineers_qs.filter(region=region)
    if skill:
        engineers_qs = engineers_qs.filter(skills__contains=[skill])
    engineers = list(engineers_qs.prefetch_related("absences"))
    related = ("ticket__asset__site", "ticket__asset__equipment_model",
               "ticket__episode__failure_mode", "engineer")
    booked = list(access.work_order_list_for_user(user=user).select_related(*related).filter(
        status__in=BOOKED, engineer__in=engineers, scheduled_start__lt=t1,
        scheduled_end__gt=t0).order_by("scheduled_start", "pk"))
    absences = {e.pk: [(a.starts_at, a.ends_at) for a in e.absences.all()
                       if a.starts_at < t1 and a.ends_at > t0] for e in engineers}
    by_cell: dict[tuple[int, dt.date], list[Booking]] = defaultdict(list)
    by_engineer: dict[int, list[Booking]] = defaultdict(list)
    for wo in booked:
        if wo.engineer is None or wo.scheduled_start is None:  # excluded by the filter
            continue
        b = Booking(work_order=wo, skill=work_order_skill(wo))
        _booking_conflicts(b, engineer=wo.engineer, absences=absences[wo.engineer_id or 0])
        by_engineer[wo.engineer.pk].append(b)
        by_cell[(wo.engineer.pk, wo.scheduled_start.astimezone(dt.UTC).date())].append(b)
    for bookings in by_engineer.values():  # overlaps, each pair named once on both jobs
        for i, a in enumerate(bookings):
            for b in bookings[i + 1:]:
                wa, wb = a.work_order, b.work_order
                if (wb.scheduled_start is not None and wa.scheduled_end is not None
                        and wb.scheduled_start < wa.scheduled_end):
                    a.conflicts.append(f"overlaps WO-{wb.pk:06d}")
                    b.conflicts.append(f"overlaps WO-{wa.pk:06d}")
    rows = [EngineerRow(
        engineer=e, days=[by_cell.get((e.pk, d), []) for d in day_list],
        absent=[any(s.date() <= d <= e_.date() for s, e_ in absences[e.pk]) for d in day_list])
        for e in engineers]
    waiting_qs = access.work_order_list_for_user(user=user).select_related(*related).filter(
        Q(status=W.PROPOSED) | Q(status=W.SCHEDULED, engineer__isnull=True))
    if region:
        waiting_qs = waiting_qs.filter(ticket__asset__site__region=region)
    waiting: list[WaitingJob] = []
    waiting_total = 0
    pool = list(Engineer.objects.filter(available=True).order_by("name"))
    for wo in waiting_qs.order_by("ticket__resolution_due", "pk")[:1000]:
        b = Booking(work_order=wo, skill=work_order_skill(wo))
        if skill and b.skill != skill:
            continue
        waiting_total += 1
        if len(waiting) >= WAITING_SHOWN:
            continue
        _booking_conflicts(b, engineer=None, absences=[])
        site_region = wo.ticket.asset.site.region
        waiting.append(WaitingJob(booking=b, candidates=[
            e for e in pool if e.region == site_region and b.skill in e.skills]))
    n = sum(1 for r in rows for cell in r.days for b in cell if b.conflicts)
    n += sum(1 for w in waiting if w.booking.conflicts)
    return DispatchBoard(days=day_list, rows=rows, waiting=waiting, regions=all_regions,
                         skills=all_skills, conflicts=n, waiting_total=waiting_total)
