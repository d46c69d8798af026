"""Emails the automation sends, through Django's email framework (SMTP set by EMAIL_* settings).

Each email is owed through :func:`notify`, inside the transaction of the change that causes
it: a :class:`~service_crm.models.Notification` row (a kind and the ids the email is built
from) commits or rolls back with the change, so nobody is told about something that was
rolled back and nothing is forgotten because a process died after its commit. Once the
transaction commits the email is built and sent inline (a web request, a test) or, in a
process that called :func:`send_in_background` (the CRM consumer, whose one DB thread applies
every alert event in order), from a thread of its own, so an alert's ticket never waits on the
mail server; or, in a process that called :func:`leave_to_outbox` (a CRM consumer started with
``--emails outbox``), not at all: the row is owed unleased and a mail worker
(``manage.py crm_mail``, any number of them, on any machine) claims and sends it within its
poll interval, so no email costs the consumer's CPU. A send that fails (the mail server
down) or never happened (the process died) is retried by :func:`notifications_send_due`
(housekeeping) under the rules of every outbox here (:mod:`service_crm.services.outbox`:
lease, backoff, then given up and audited). Sending is
at least once: a process that dies between the mail server's answer and marking the row sent
sends that email again after the lease.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

from django.core.mail import EmailMessage
from django.db import close_old_connections, connection, transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone

from service_crm import conf
from service_crm.models import (
    Contact,
    FollowUpTask,
    MaintenanceContract,
    Notification,
    Offer,
    Ticket,
    WorkOrder,
)
from service_crm.models.choices import DeliveryStatus
from service_crm.selectors.offers import offer_totals_get
from service_crm.services.outbox import claim_due, retry_or_give_up

log = logging.getLogger("service_crm.notifications")
_background: Executor | None = None
D = DeliveryStatus

# A claimed notification is someone's for this long; then another pass may send it.
LEASE = dt.timedelta(minutes=5)
# Sent rows are kept this long (what went out, to whom it was owed), then pruned.
KEEP_SENT = dt.timedelta(days=30)


def send_in_background(executor: Executor | None) -> None:
    """Send every later notification of this process through `executor` (None: inline)."""
    global _background
    _background = executor


_outbox_only = False


def leave_to_outbox(on: bool) -> None:
    """With `on`, this process sends no email itself: each is owed unleased, for a mail worker
    (:func:`notifications_send_due`, ``manage.py crm_mail``) to claim at once."""
    global _outbox_only
    _outbox_only = on


def outbox_only() -> bool:
    """True in a process that called ``leave_to_outbox(True)``."""
    return _outbox_only


def notify(kind: str, *, now: dt.datetime | None = None, **args: Any) -> Notification:
    """Owe the email `kind`, built from `args` (ids), in the caller's transaction; it is
    sent once that transaction commits (see the module doc)."""
    if kind not in SENDERS:
        raise ValueError(f"unknown notification {kind!r}")
    now = now or timezone.now()
    # Left to the outbox: unleased, for a mail worker to claim at once; else claimed by this
    # process, which sends it once the transaction commits.
    lease = None if _outbox_only else now + LEASE
    row = Notification.objects.create(kind=kind, args=args, created_at=now,
                                      next_attempt_at=now, leased_until=lease)
    if lease is not None:
        pk, claim = row.pk, lease
        transaction.on_commit(lambda: _dispatch(pk, claim), robust=True)
    return row


def _dispatch(pk: int, lease: dt.datetime) -> None:
    executor = _background
    if executor is None:
        notification_send(pk, lease)
        return
    executor.submit(_in_background, pk, lease)


def _in_background(pk: int, lease: dt.datetime) -> None:
    close_old_connections()
    notification_send(pk, lease)


def notification_send(pk: int, lease: dt.datetime, *, now: dt.datetime | None = None) -> str:
    """Build and send one notification claimed until `lease`; record the outcome.

    The lease is the claim's token: if the row was claimed again since (this send waited in a
    queue past its lease and a housekeeping pass took it), this one does nothing. Never
    raises: an SMTP or rendering error costs an attempt, not the caller."""
    now = now or timezone.now()
    try:
        row = Notification.objects.get(pk=pk, status=D.PENDING, leased_until=lease)
    except Notification.DoesNotExist:
        return "gone"
    try:
        SENDERS[row.kind](**row.args)
    except Exception as exc:  # noqa: BLE001 - recorded on the row and retried
        log.exception("notification %s (%s) failed", pk, row.kind)
        return _record_failure(pk=pk, error=f"{type(exc).__name__}: {exc}", now=now)
    with transaction.atomic():
        # Not waiting for the WAL flush: a mark lost in a crash only sends the email again,
        # which at-least-once allows, and the event thread's commits do not queue behind it.
        with connection.cursor() as cur:
            cur.execute("SET LOCAL synchronous_commit = off")
        Notification.objects.filter(pk=pk).update(
            status=D.DELIVERED, sent_at=timezone.now(), attempts=F("attempts") + 1,
            leased_until=None, last_error="")
    return str(D.DELIVERED)


@transaction.atomic(durable=True)
def _record_failure(*, pk: int, error: str, now: dt.datetime) -> str:
    row = Notification.objects.select_for_update().get(pk=pk)
    return retry_or_give_up(row, error=error, now=now, dead_action="notification.dead")


@dataclass(frozen=True)
class NotificationReport:
    dispatched: int = 0
    pruned: int = 0


def notifications_send_due(*, now: dt.datetime | None = None,
                           limit: int = 200) -> NotificationReport:
    """Hand every due notification (a failed send whose backoff passed, or one whose process
    died before sending it) to the sender, inline or in the background; prune old sent rows."""
    now = now or timezone.now()
    lease = now + LEASE
    with transaction.atomic(durable=not connection.in_atomic_block):
        ids = claim_due(Notification, now=now, limit=limit, lease=lease)
    for pk in ids:
        _dispatch(pk, lease)
    pruned, _ = Notification.objects.filter(
        status=D.DELIVERED, next_attempt_at__lt=now - KEEP_SENT).delete()
    return NotificationReport(dispatched=len(ids), pruned=pruned)


def _ics_time(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")


def _ics_escape(text: str) -> str:
    return (text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
            .replace("\n", "\\n"))


def work_order_ics(work_order: WorkOrder, *, now: dt.datetime) -> str:
    """An RFC 5545 calendar with the work order's visit as one event."""
    if work_order.scheduled_start is None or work_order.scheduled_end is None:
        raise ValueError("work order has no scheduled window")
    site = work_order.ticket.asset.site
    lines = [
        "BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Aftercare//Service CRM//EN",
        "METHOD:REQUEST", "BEGIN:VEVENT",
        f"UID:work-order-{work_order.pk}@aftercare",
        f"DTSTAMP:{_ics_time(now)}",
        f"DTSTART:{_ics_time(work_order.scheduled_start)}",
        f"DTEND:{_ics_time(work_order.scheduled_end)}",
        f"SUMMARY:{_ics_escape(f'{work_order}: {work_order.ticket.summary}')}",
        f"LOCATION:{_ics_escape(', '.join(p for p in (site.name, site.address, site.city) if p))}",
        "END:VEVENT", "END:VCALENDAR",
    ]
    return "\r\n".join(lines) + "\r\n"


def notify_engineer_work_order(*, work_order_id: int, now: dt.datetime | None = None) -> None:
    wo = WorkOrder.objects.select_related(
        "engineer", "ticket__asset__site__account", "ticket__asset__equipment_model").get(
        pk=work_order_id)
    if wo.engineer is None:
        return
    t = wo.ticket
    msg = EmailMessage(
        subject=f"[Aftercare] {wo}: {t.summary}",
        body=(f"You have a work order for {t.asset} at {t.asset.site}.\n"
              f"Ticket {t.number}, priority {t.get_priority_display()}.\n"
              f"Window: {wo.scheduled_start:%Y-%m-%d %H:%M} - {wo.scheduled_end:%H:%M} UTC\n"),
        from_email=conf.from_email(), to=[wo.engineer.email],
    )
    if wo.scheduled_start is not None and wo.scheduled_end is not None:
        msg.attach(f"work-order-{wo.pk}.ics", work_order_ics(wo, now=now or timezone.now()),
                   "text/calendar; method=REQUEST")
    msg.send()


def notify_customer_ticket(*, ticket_id: int) -> None:
    """Proactive notice to the account's technical contacts: we saw it before they did."""
    t = Ticket.objects.select_related("asset__site", "account").get(pk=ticket_id)
    to = [c.email for c in Contact.objects.filter(account=t.account, roles__contains=["technical"])]
    if not to:
        return
    EmailMessage(
        subject=f"[Aftercare] We detected an issue on {t.asset.serial}",
        body=(f"Our monitoring detected: {t.summary}.\nWe opened ticket {t.number} "
              f"({t.get_coverage_display()}) and will be in touch about next steps.\n"),
        from_email=conf.from_email(), to=to,
    ).send()


def notify_customer_service_report(*, work_order_id: int) -> None:
    """The service report of a completed job, as a PDF, to the account's technical
    contacts."""
    from service_crm.selectors.service_report import service_report_pdf

    wo = WorkOrder.objects.select_related("ticket__asset__site__account").get(pk=work_order_id)
    t = wo.ticket
    to = [c.email for c in Contact.objects.filter(account=t.account,
                                                   roles__contains=["technical"]) if c.email]
    if not to:
        return
    msg = EmailMessage(
        subject=f"[Aftercare] Service report WO-{wo.pk:06d}: {t.asset.serial}",
        body=(f"Our engineer completed the visit for ticket {t.number} on {t.asset.serial} "
              f"({t.asset.site.name}).\nThe service report is attached; it is also in the "
              f"customer portal:\n{conf.public_url()}"
              f"{reverse('portal:ticket', args=[t.pk])}\n"),
        from_email=conf.from_email(), to=to)
    msg.attach(f"service-report-WO-{wo.pk:06d}.pdf", service_report_pdf(work_order=wo),
               "application/pdf")
    msg.send()


def notify_offer(*, offer_id: int, contact_ids: list[int]) -> None:
    """The offer with its total, and the portal link where the contact accepts or declines it
    (with their purchase-order number)."""
    offer = Offer.objects.prefetch_related("lines").get(pk=offer_id)
    rows = list(offer.lines.all())
    money = offer_totals_get(offer=offer, lines=rows)
    cur = money.currency
    lines = "\n".join(f"  {ln.quantity.normalize():f} x {ln.description}: "
                      f"{ln.unit_price:,.2f} {cur} = {ln.total:,.2f} {cur}" for ln in rows)
    discount = (f"Discount {money.discount_pct.normalize():f} %: -{money.discount:,.2f} {cur}\n"
                if money.discount else "")
    link = conf.public_url() + reverse("portal:offer", args=[offer.pk])
    for contact in Contact.objects.filter(pk__in=contact_ids, offer_consent=True):
        EmailMessage(
            subject=f"[Aftercare] Offer {offer.number}: {offer.title}",
            body=(f"Dear {contact.name},\n\n{offer.title}\n{lines}\n"
                  f"Subtotal: {money.subtotal:,.2f} {cur}\n{discount}"
                  f"Total: {money.total:,.2f} {cur}\nValid until {offer.valid_until}.\n\n"
                  f"To accept or decline it, with your purchase-order number, sign in to the "
                  f"customer portal:\n{link}\n"),
            from_email=conf.from_email(), to=[contact.email],
        ).send()


def notify_desk_sla_at_risk(*, ticket_id: int) -> None:
    t = Ticket.objects.select_related("account").get(pk=ticket_id)
    EmailMessage(
        subject=f"[Aftercare] SLA at risk: {t.number} ({t.account})",
        body=(f"{t.summary}\nResolution due {t.resolution_due:%Y-%m-%d %H:%M} UTC, "
              f"status {t.get_status_display()}.\n"),
        from_email=conf.from_email(), to=[conf.desk_email()],
    ).send()


def notify_desk_contract_lapsed(*, contract_id: int) -> None:
    c = MaintenanceContract.objects.select_related("account").get(pk=contract_id)
    EmailMessage(
        subject=f"[Aftercare] Contract lapsed: {c.number} ({c.account})",
        body=(f"Contract {c.number} ({c.get_tier_display()}) for {c.account} ended on {c.end} "
              "and was not renewed. Its assets are no longer covered; please call the "
              "customer.\n"),
        from_email=conf.from_email(), to=[conf.desk_email()],
    ).send()


def notify_assignee_task_reminder(*, task_id: int) -> None:
    t = FollowUpTask.objects.select_related("account", "assignee").get(pk=task_id)
    if not t.assignee.email:
        return
    EmailMessage(
        subject=f"[Aftercare] Follow-up due {t.due}: {t.title}",
        body=(f"{t.title}\nAccount: {t.account}\nDue: {t.due}\n\n"
              f"{conf.public_url()}/desk/tasks/?state=open\n"),
        from_email=conf.from_email(), to=[t.assignee.email],
    ).send()


# What each kind of notification sends: a function taking the row's args as keywords.
SENDERS: dict[str, Callable[..., None]] = {
    "work_order.assigned": notify_engineer_work_order,
    "work_order.report": notify_customer_service_report,
    "ticket.opened": notify_customer_ticket,
    "ticket.sla_at_risk": notify_desk_sla_at_risk,
    "offer.sent": notify_offer,
    "contract.lapsed": notify_desk_contract_lapsed,
    "task.reminder": notify_assignee_task_reminder,
}
