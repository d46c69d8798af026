"""Emails after commit, inline or (the CRM consumer) from a thread of their own: never for a
rolled-back change, never raised into the change, and the alert's ticket does not wait."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.core import mail
from django.db import transaction

from service_crm.services import notifications
from service_crm.services.alerts import alert_ingest
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


def _rolled_back(send: object) -> None:
    with transaction.atomic():
        notifications.after_commit(send)  # type: ignore[arg-type]
        raise RuntimeError


def test_background_send_runs_after_commit_on_its_own_thread(
        background: ThreadPoolExecutor, caplog: pytest.LogCaptureFixture) -> None:
    ran: list[str] = []
    with transaction.atomic():
        notifications.after_commit(lambda: ran.append(threading.current_thread().name))
        assert ran == []
    with pytest.raises(RuntimeError):
        _rolled_back(lambda: ran.append("rolled back"))
    with transaction.atomic():
        notifications.after_commit(lambda: 1 / 0)  # a failing send: logged, not raised
    background.shutdown(wait=True)
    assert len(ran) == 1
    assert ran[0].startswith("mail-test")
    assert "notification failed" in caplog.text


def test_an_alerts_emails_go_out_from_the_background(world: World,
                                                     background: ThreadPoolExecutor) -> None:
    world.cover_by_contract()
    mail.outbox.clear()
    result = alert_ingest(event=make_event(), now=NOW)  # under contract: ticket + work order
    assert result.work_order_id is not None
    background.shutdown(wait=True)                     # what was queued is sent
    assert any(e.to == [world.engineer.email] for e in mail.outbox), mail.outbox
    assert any(e.to == [world.technical.email] for e in mail.outbox), mail.outbox


def test_without_a_background_executor_emails_go_out_inline(world: World) -> None:
    world.cover_by_contract()
    mail.outbox.clear()
    alert_ingest(event=make_event(alert_id="inline"), now=NOW)
    # sent before alert_ingest returned, from this thread
    assert any(e.to == [world.engineer.email] for e in mail.outbox), mail.outbox
