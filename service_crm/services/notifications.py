"""Emails the automation sends, through Django's email framework (SMTP set by EMAIL_* settings).

Each function loads what it needs by id and is handed to :func:`after_commit`: nobody is told
about something that was rolled back. Emails go out inline (a web request, a test), or, in a
process that called :func:`send_in_background` (the CRM consumer, whose one DB thread applies
every alert event in order), from a thread of their own, so an alert's ticket never waits on
the mail server.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from concurrent.futures import Executor

from django.core.mail import EmailMessage
from django.db import close_old_connections, transaction
from django.urls import reverse

from service_crm import conf
from service_crm.models import Contact, MaintenanceContract, Offer, Ticket, WorkOrder
from service_crm.selectors.offers import offer_totals_get

log = logging.getLogger("service_crm.notifications")
_background: Executor | None = None


def send_in_background(executor: Executor | None) -> None:
    """Send every later notification of this process through `executor` (None: inline)."""
    global _background
    _background = executor


def after_commit(send: Callable[[], None]) -> None:
    """Run `send` once the caller's transaction commits (never after a rollback); a failing
    send is logged, never raised into the change that caused it."""
    transaction.on_commit(lambda: _dispatch(send), robust=True)


def _dispatch(send: Callable[[], None]) -> None:
    executor = _background
    if executor is None:
        send()
        return
    executor.submit(_in_background, send)


def _in_background(send: Callable[[], None]) -> None:
    close_old_connections()
    try:
        send()
    except Exception:  # an SMTP or rendering error costs that email, not the worker
        log.exception("notification failed")


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


def notify_engineer_work_order(*, work_order_id: int, now: dt.datetime) -> None:
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
        msg.attach(f"work-order-{wo.pk}.ics", work_order_ics(wo, now=now),
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
