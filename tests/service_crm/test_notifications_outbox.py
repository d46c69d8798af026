"""Emails through the notification outbox: owed in the transaction of the change (never for a
rolled-back one), sent after commit inline or (the CRM consumer) from a thread of their own,
retried when the mail server fails or the process died before sending, given up and audited
after the last attempt, and never sent twice by a stale claim."""

from __future__ import annotations

import datetime as dt
import smtplib
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend
from django.db import transaction

from service_crm import conf
from service_crm.models import AuditLog, Notification
from service_crm.services import notifications
from service_crm.services.alerts import alert_ingest
from service_crm.services.housekeeping import housekeeping_run
from tests.support.crm import make_event
from tests.support.world import NOW, World

pytestmark = [pytest.mark.db, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def background() -> Iterator[ThreadPoolExecutor]:
    ex = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mail-test")
    notifications.send_in_background(ex)
    try:
        yield ex
    finally:
        notifications.send_in_background(None)
        ex.shutdown(wait=True)


def mail_server_down(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: Any, messages: Any) -> int:
        raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
    monkeypatch.setattr(EmailBackend, "send_messages", refuse)


def _ticket_id(world: World) -> int:
    world.cover_by_contract()
    result = alert_ingest(event=make_event(alert_id="seed"), now=NOW)
    assert result.ticket_id is not None
    mail.outbox.clear()
    return result.ticket_id


def _rolled_back(ticket_id: int) -> None:
    with transaction.atomic():
        notifications.notify("ticket.opened", ticket_id=ticket_id)
        raise RuntimeError


def test_sent_after_commit_on_the_mail_thread_and_never_for_a_rollback(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    ticket_id = _ticket_id(world)                  # (its own emails sent inline)
    background = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mail-test")
    monkeypatch.setattr(notifications, "_background", background)   # send_in_background
    threads: list[str] = []
    send = notifications.SENDERS["ticket.opened"]
    monkeypatch.setitem(notifications.SENDERS, "ticket.opened", lambda **kw: (
        threads.append(threading.current_thread().name), send(**kw)))
    owed = Notification.objects.count()
    with transaction.atomic():
        row = notifications.notify("ticket.opened", ticket_id=ticket_id)
        assert threads == []                       # not before the commit
    with pytest.raises(RuntimeError):
        _rolled_back(ticket_id)
    background.shutdown(wait=True)
    assert len(threads) == 1, threads
    assert threads[0].startswith("mail-test"), threads
    assert Notification.objects.count() == owed + 1   # the rolled-back one never owed
    row.refresh_from_db()
    assert (row.status, row.attempts, row.sent_at is not None) == ("delivered", 1, True)
    assert [e.to for e in mail.outbox] == [[world.technical.email]]


def test_a_failed_send_is_retried_after_its_backoff(world: World,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    ticket_id = _ticket_id(world)
    mail_server_down(monkeypatch)
    with transaction.atomic():
        row = notifications.notify("ticket.opened", now=NOW, ticket_id=ticket_id)
    row.refresh_from_db()
    assert (row.status, row.attempts) == ("pending", 1)
    assert "SMTPServerDisconnected" in row.last_error
    assert row.next_attempt_at > NOW
    assert mail.outbox == []
    monkeypatch.undo()                              # the mail server is back
    early = notifications.notifications_send_due(now=row.next_attempt_at
                                                 - dt.timedelta(seconds=1))
    assert early.dispatched == 0                    # not before its backoff
    assert notifications.notifications_send_due(now=row.next_attempt_at).dispatched == 1
    row.refresh_from_db()
    assert (row.status, row.attempts) == ("delivered", 2)
    assert [e.to for e in mail.outbox] == [[world.technical.email]]


def test_an_email_owed_by_a_process_that_died_is_sent_once_its_lease_ends(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    ticket_id = _ticket_id(world)
    monkeypatch.setattr(notifications, "_dispatch", lambda pk, lease: None)   # died here
    with transaction.atomic():
        row = notifications.notify("ticket.opened", now=NOW, ticket_id=ticket_id)
    monkeypatch.undo()
    assert mail.outbox == []
    assert notifications.notifications_send_due(now=NOW + dt.timedelta(minutes=1)
                                                ).dispatched == 0    # still its owner's
    later = NOW + notifications.LEASE + dt.timedelta(seconds=1)
    assert notifications.notifications_send_due(now=later).dispatched == 1
    assert notifications.notifications_send_due(now=later).dispatched == 0  # once
    row.refresh_from_db()
    assert row.status == "delivered"
    assert [e.to for e in mail.outbox] == [[world.technical.email]]


def test_a_stale_claim_sends_nothing(world: World) -> None:
    ticket_id = _ticket_id(world)
    row = Notification.objects.create(kind="ticket.opened", args={"ticket_id": ticket_id},
                                      created_at=NOW, next_attempt_at=NOW,
                                      leased_until=NOW)
    later = NOW + dt.timedelta(seconds=1)
    assert notifications.notifications_send_due(now=later).dispatched == 1   # re-claimed, sent
    assert notifications.notification_send(row.pk, NOW) == "gone"           # the old claim
    assert len(mail.outbox) == 1


def test_given_up_after_the_last_attempt_and_audited(world: World,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    ticket_id = _ticket_id(world)
    mail_server_down(monkeypatch)
    with transaction.atomic():
        row = notifications.notify("ticket.opened", now=NOW, ticket_id=ticket_id)
    for _ in range(conf.webhook_max_attempts() + 2):
        row.refresh_from_db()
        notifications.notifications_send_due(now=row.next_attempt_at)
    row.refresh_from_db()
    assert (row.status, row.attempts) == ("dead", conf.webhook_max_attempts())
    assert AuditLog.objects.filter(action="notification.dead",
                                   object_id=str(row.pk)).count() == 1


def test_an_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown notification"):
        notifications.notify("nothing.like.this", ticket_id=1)


def test_an_alerts_emails_go_out_from_the_background(world: World,
                                                     background: ThreadPoolExecutor) -> None:
    world.cover_by_contract()
    mail.outbox.clear()
    result = alert_ingest(event=make_event(), now=NOW)  # under contract: ticket + work order
    assert result.work_order_id is not None
    background.shutdown(wait=True)                     # what was queued is sent
    assert any(e.to == [world.engineer.email] for e in mail.outbox), mail.outbox
    assert any(e.to == [world.technical.email] for e in mail.outbox), mail.outbox
    assert set(Notification.objects.values_list("kind", "status")) == {
        ("work_order.assigned", "delivered"), ("ticket.opened", "delivered")}


def test_without_a_background_executor_emails_go_out_inline(world: World) -> None:
    world.cover_by_contract()
    mail.outbox.clear()
    alert_ingest(event=make_event(alert_id="inline"), now=NOW)
    # sent before alert_ingest returned, from this thread
    assert any(e.to == [world.engineer.email] for e in mail.outbox), mail.outbox


def test_left_to_the_outbox_a_mail_worker_sends_at_once(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    # A consumer started with --emails outbox sends nothing itself: each email is owed
    # unleased, and the mail worker (manage.py crm_mail) claims and sends it on its next pass
    # (not after the 5-minute lease an inline send takes out), once.
    from io import StringIO

    from django.core.management import call_command

    world.cover_by_contract()
    monkeypatch.setattr(notifications, "_outbox_only", True)      # leave_to_outbox(True)
    result = alert_ingest(event=make_event(alert_id="outbox"), now=NOW)
    assert result.ticket_id is not None
    owed = list(Notification.objects.filter(status="pending"))
    assert owed
    assert all(n.leased_until is None for n in owed)
    assert mail.outbox == []                               # nothing sent by the consumer
    housekeeping_run(now=NOW)                              # nor by its housekeeping
    assert mail.outbox == []
    out = StringIO()
    call_command("crm_mail", stdout=out)
    assert f"sent {len(owed)}" in out.getvalue()
    assert len(mail.outbox) >= len(owed)
    assert not Notification.objects.filter(status="pending").exists()
    sent = len(mail.outbox)
    call_command("crm_mail", stdout=StringIO())            # a second pass sends nothing
    assert len(mail.outbox) == sent
