"""Business events from the transactional outbox, delivered as signed webhooks to a real HTTP
receiver (pytest-httpserver): signature, idempotency key, retries with backoff, a receiver that
is down for a while, giving up, replay, and concurrent workers."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction
from django.test import override_settings
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from service_crm import models as m
from service_crm.models.choices import DeliveryStatus, Outcome
from service_crm.services.alerts import alert_ingest
from service_crm.services.audit import snapshot
from service_crm.services.contracts import contract_expire_due
from service_crm.services.offers import offer_decide, offer_send
from service_crm.services.tickets import ticket_check_sla
from service_crm.services.webhooks import (
    outbox_emit,
    webhook_body,
    webhook_deliver_due,
    webhook_replay,
    webhook_sign,
)
from service_crm.services.work_orders import (
    work_order_complete,
    work_order_schedule,
    work_order_start,
)
from tests import factories as f
from tests.support.crm import make_event, race
from tests.support.world import NOW, World

pytestmark = [pytest.mark.db, pytest.mark.django_db]
S = dt.timedelta(seconds=1)


class Receiver:
    """An ERP stand-in: records every call; answers ``status`` (settable)."""

    def __init__(self, server: HTTPServer) -> None:
        self.server = server
        self.calls: list[dict[str, Any]] = []
        self.status = 200
        self._lock = threading.Lock()
        server.expect_request("/hook", method="POST").respond_with_handler(self._handle)

    def _handle(self, request: Request) -> Response:
        with self._lock:
            self.calls.append({"headers": dict(request.headers), "body": request.get_data()})
            return Response("ok" if self.status < 300 else "down", status=self.status)

    @property
    def url(self) -> str:
        return self.server.url_for("/hook")

    def keys(self) -> list[str]:
        return [c["headers"]["Idempotency-Key"] for c in self.calls]


@pytest.fixture
def receiver(httpserver: HTTPServer) -> Receiver:
    return Receiver(httpserver)


def _endpoint(url: str, **kw: Any) -> m.WebhookEndpoint:
    return m.WebhookEndpoint.objects.create(name=kw.pop("name", "ERP"), url=url, **kw)


def _emit(n: int, *, at: dt.datetime = NOW) -> list[str]:
    ids = []
    with transaction.atomic():
        for i in range(n):
            ids.append(str(outbox_emit(topic="contract.renewed", data={"i": i}, now=at).id))
    return ids


def test_event_is_signed_and_carries_its_idempotency_key(receiver: Receiver) -> None:
    ep = _endpoint(receiver.url)
    [event_id] = _emit(1)
    assert webhook_deliver_due(now=NOW).delivered == 1

    [call] = receiver.calls
    h, body = call["headers"], call["body"]
    assert h["Idempotency-Key"] == event_id
    assert h["Aftercare-Event"] == "contract.renewed"
    assert h["Aftercare-Timestamp"] == str(int(NOW.timestamp()))
    expected = hmac.new(ep.secret.encode(), f"{h['Aftercare-Timestamp']}.".encode() + body,
                        hashlib.sha256).hexdigest()
    assert h["Aftercare-Signature"] == f"v1={expected}"
    assert json.loads(body) == {"id": event_id, "topic": "contract.renewed",
                                "occurred_at": "2026-11-23T09:00:00+00:00", "data": {"i": 0}}
    d = m.WebhookDelivery.objects.get()
    assert (d.status, d.attempts, d.last_status_code, d.delivered_at) == (
        DeliveryStatus.DELIVERED, 1, 200, NOW)
    assert webhook_deliver_due(now=NOW + 3600 * S).delivered == 0  # sent once


def test_signature_does_not_verify_with_another_secret_or_body() -> None:
    sig = webhook_sign(secret="s1", timestamp=1, body=b"{}")
    assert sig != webhook_sign(secret="s2", timestamp=1, body=b"{}")
    assert sig != webhook_sign(secret="s1", timestamp=2, body=b"{}")
    assert sig != webhook_sign(secret="s1", timestamp=1, body=b"{ }")


def test_rolled_back_change_emits_nothing_and_topics_filter(receiver: Receiver) -> None:
    _endpoint(receiver.url, name="all")
    _endpoint(receiver.url, name="offers only", topics=["offer.accepted"])
    _endpoint(receiver.url, name="off", active=False)

    @transaction.atomic
    def failing_change() -> None:
        outbox_emit(topic="contract.lapsed", data={}, now=NOW)
        raise RuntimeError("the change failed")

    with pytest.raises(RuntimeError):
        failing_change()
    assert not m.OutboxEvent.objects.exists()
    _emit(1)
    assert [d.endpoint.name for d in m.WebhookDelivery.objects.all()] == ["all"]
    with pytest.raises(ValueError, match="unknown event topic"), transaction.atomic():
        outbox_emit(topic="nonsense", data={}, now=NOW)


def test_failed_delivery_is_retried_with_backoff(receiver: Receiver) -> None:
    _endpoint(receiver.url)
    _emit(1)
    receiver.status = 503
    assert webhook_deliver_due(now=NOW).failed == 1
    d = m.WebhookDelivery.objects.get()
    assert (d.attempts, d.last_status_code, d.next_attempt_at) == (1, 503, NOW + 30 * S)
    assert webhook_deliver_due(now=NOW + 29 * S).failed == 0  # not due yet: no call
    assert len(receiver.calls) == 1
    assert webhook_deliver_due(now=NOW + 30 * S).failed == 1
    d.refresh_from_db()
    assert d.next_attempt_at == NOW + 30 * S + 60 * S  # doubled
    receiver.status = 200
    assert webhook_deliver_due(now=NOW + 90 * S).delivered == 1
    assert len(set(receiver.keys())) == 1
    assert len(receiver.calls) == 3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def restartable() -> Iterator[HTTPServer]:
    server = HTTPServer(host="127.0.0.1", port=_free_port())
    yield server
    if server.is_running():
        server.stop()


def test_receiver_down_for_a_while_loses_nothing(restartable: HTTPServer) -> None:
    """The receiver is not listening at all (connection refused) for ten minutes while 50
    events are written; when it comes back every event arrives, each exactly once."""
    receiver = Receiver(restartable)
    _endpoint(receiver.url)
    ids = _emit(50)
    t = NOW
    while t < NOW + 600 * S:  # down: every due attempt fails
        report = webhook_deliver_due(now=t)
        assert report.delivered == 0
        t += 15 * S
    assert m.WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING).count() == 50
    assert min(m.WebhookDelivery.objects.values_list("attempts", flat=True)) >= 4
    assert "Connection refused" in m.WebhookDelivery.objects.first().last_error  # type: ignore[union-attr]

    restartable.start()
    while m.WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING).exists():
        webhook_deliver_due(now=t)
        t += 15 * S
        assert t < NOW + 3 * 3600 * S
    assert sorted(receiver.keys()) == sorted(ids)  # all of them, none twice
    assert m.WebhookDelivery.objects.filter(status=DeliveryStatus.DELIVERED).count() == 50


@override_settings(AFTERCARE_WEBHOOK_MAX_ATTEMPTS=2)
def test_delivery_given_up_then_replayed_by_an_admin(receiver: Receiver, desk_agent: Any) -> None:
    _endpoint(receiver.url)
    [event_id] = _emit(1)
    receiver.status = 500
    webhook_deliver_due(now=NOW)
    assert webhook_deliver_due(now=NOW + 30 * S).dead == 1
    d = m.WebhookDelivery.objects.get()
    assert d.status == DeliveryStatus.DEAD
    assert m.AuditLog.objects.filter(action="webhook.dead").count() == 1
    assert webhook_deliver_due(now=NOW + 3600 * S).dead == 0  # left alone

    with pytest.raises(ValidationError) as err:
        webhook_replay(delivery=d, actor=desk_agent, now=NOW + 3600 * S)
    assert "actor" in err.value.message_dict
    admin = f.UserFactory(username="integrations", is_superuser=True, is_staff=True)
    webhook_replay(delivery=d, actor=admin, now=NOW + 3600 * S)
    assert m.AuditLog.objects.get(action="webhook.replay").actor_label == "integrations"
    receiver.status = 200
    assert webhook_deliver_due(now=NOW + 3600 * S).delivered == 1
    assert receiver.keys() == [event_id] * 3  # same key every time: the receiver can dedupe


@pytest.mark.django_db(transaction=True)
def test_concurrent_workers_send_each_delivery_once(receiver: Receiver) -> None:
    _endpoint(receiver.url)
    ids = _emit(40)
    results = race([lambda: webhook_deliver_due(now=NOW)] * 4)
    assert all(not isinstance(r, BaseException) for r in results), results
    assert sum(r.delivered for r in results) == 40
    assert sorted(receiver.keys()) == sorted(ids)


def test_endpoint_needs_https_and_its_secret_stays_out_of_the_audit_log() -> None:
    ep = m.WebhookEndpoint(name="ERP", url="http://erp.example.com/hook")
    with pytest.raises(ValidationError) as err:
        ep.full_clean()
    assert "url" in err.value.message_dict
    with override_settings(AFTERCARE_WEBHOOK_ALLOW_HTTP=True):
        ep.full_clean()
    ep.save()
    assert len(ep.secret) >= 40
    assert "secret" not in (snapshot(ep) or {})


# --- the business events ----------------------------------------------------------------------


def _topics() -> list[str]:
    return list(m.OutboxEvent.objects.order_by("created_at", "topic").values_list("topic",
                                                                                  flat=True))


def test_business_events_reach_the_outbox(world: World, receiver: Receiver) -> None:
    _endpoint(receiver.url)
    world.cover_by_contract(covers_parts=False)
    res = alert_ingest(event=make_event(severity="critical"), now=NOW)
    wo = m.WorkOrder.objects.get(pk=res.work_order_id)
    work_order_schedule(work_order=wo, engineer=world.engineer, start=NOW + 3600 * S,
                        end=NOW + 4 * 3600 * S, actor=None, now=NOW)
    work_order_start(work_order=wo, actor=None, now=NOW + 3600 * S)
    work_order_complete(work_order=wo, actor=None, report="Replaced", time_spent_min=60,
                        outcome=Outcome.FAULT_CONFIRMED, now=NOW + 2 * 3600 * S)
    done = m.OutboxEvent.objects.get(topic="work_order.completed")
    assert done.payload["ticket"] == m.Ticket.objects.get(pk=res.ticket_id).number
    assert done.payload["charges"] == [{"kind": "labour", "description": "Engineer labour",
                                        "quantity": "1.00", "unit_price": "95.00",
                                        "amount": "95.00", "covered": True}]

    late = alert_ingest(event=make_event(severity="critical", failure_mode="leak"), now=NOW)
    assert ticket_check_sla(now=NOW + dt.timedelta(days=30)).breached >= 1
    breach = m.OutboxEvent.objects.filter(topic="ticket.sla_breached",
                                          payload__ticket_id=late.ticket_id)
    assert {e.payload["breach"] for e in breach} == {"response", "resolution"}
    ticket_check_sla(now=NOW + dt.timedelta(days=31))
    assert breach.count() == 2  # once per breach

    f.ContractFactory(account=world.account, start=dt.date(2025, 1, 1),
                      end=dt.date(2025, 12, 31), number="MC-OLD")
    contract_expire_due(now=NOW)
    lapsed = m.OutboxEvent.objects.get(topic="contract.lapsed")
    assert lapsed.payload["contract"] == "MC-OLD"
    webhook_deliver_due(now=NOW + dt.timedelta(days=31))
    assert len(receiver.calls) == m.OutboxEvent.objects.count()


def test_accepted_offer_and_renewal_events(world: World, receiver: Receiver) -> None:
    from service_crm.services.offers import offer_create_renewal

    _endpoint(receiver.url)
    contract = world.cover_by_contract(end=dt.date(2026, 12, 31))
    offer = offer_create_renewal(contract=contract, actor=None, now=NOW)
    offer_send(offer=offer, actor=None, now=NOW)
    offer_decide(offer=offer, accepted=True, actor=None, now=NOW)
    accepted = m.OutboxEvent.objects.get(topic="offer.accepted")
    assert accepted.payload["renews_contract"] == contract.number
    assert accepted.payload["lines"][0]["total"] == "4800.00"
    renewed = m.OutboxEvent.objects.get(topic="contract.renewed")
    assert (renewed.payload["previous_end"], renewed.payload["end"]) == (
        "2026-12-31", "2027-12-31")
    order = m.OutboxEvent.objects.get(topic="order.created")
    assert webhook_deliver_due(now=NOW).delivered == 3
    assert sorted(c["body"] for c in receiver.calls) == sorted(
        webhook_body(e) for e in (accepted, renewed, order))


# --- the delivery log in the admin ------------------------------------------------------------


@override_settings(AFTERCARE_WEBHOOK_MAX_ATTEMPTS=1)
def test_admin_shows_the_delivery_log_and_replays(receiver: Receiver, client: Any) -> None:
    _endpoint(receiver.url)
    _emit(1)
    receiver.status = 500
    webhook_deliver_due(now=NOW)
    d = m.WebhookDelivery.objects.get()
    boss = f.UserFactory(username="boss", is_superuser=True, is_staff=True)
    client.force_login(boss)
    page = client.get("/admin/service_crm/webhookdelivery/?status=dead")
    assert page.status_code == 200
    assert "HTTP 500" in page.content.decode()
    resp = client.post("/admin/service_crm/webhookdelivery/",
                       {"action": "replay_deliveries", "_selected_action": [d.pk]})
    assert resp.status_code == 302
    d.refresh_from_db()
    assert d.status == DeliveryStatus.PENDING
    assert m.AuditLog.objects.get(action="webhook.replay").actor_label == "boss"


def test_staff_without_superuser_cannot_see_endpoint_secrets(client: Any) -> None:
    from django.contrib.auth.models import Permission

    _endpoint("https://erp.example.com/hook")
    clerk = f.UserFactory(username="clerk", is_staff=True)
    clerk.user_permissions.add(*Permission.objects.filter(codename__endswith="webhookendpoint"))
    client.force_login(clerk)
    assert client.get("/admin/service_crm/webhookendpoint/").status_code == 403


def test_time_budget_releases_what_it_did_not_send(receiver: Receiver) -> None:
    _endpoint(receiver.url)
    ids = _emit(3)
    assert webhook_deliver_due(now=NOW, budget_s=0).delivered == 1  # at least one per pass
    assert m.WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING,
                                            leased_until__isnull=True).count() == 2
    assert webhook_deliver_due(now=NOW).delivered == 2  # released at once, not after the lease
    assert sorted(receiver.keys()) == sorted(ids)


def test_a_pass_records_each_answer_on_its_own_delivery(httpserver: HTTPServer) -> None:
    # Successes are marked in batches (one UPDATE per status code): each delivery must still
    # end with its own answer, and a failure in the middle of a pass stays a retry.
    answers = iter([200, 204, 503, 200, 202])

    def handle(request: Request) -> Response:
        return Response("", status=next(answers))

    httpserver.expect_request("/hook", method="POST").respond_with_handler(handle)
    _endpoint(httpserver.url_for("/hook"))
    ids = _emit(5)
    report = webhook_deliver_due(now=NOW)
    assert (report.delivered, report.failed, report.dead) == (4, 1, 0)
    by_event = {str(d.event_id): d for d in m.WebhookDelivery.objects.all()}
    got = [(by_event[i].status, by_event[i].last_status_code, by_event[i].attempts)
           for i in ids]
    assert got == [(DeliveryStatus.DELIVERED, 200, 1), (DeliveryStatus.DELIVERED, 204, 1),
                   (DeliveryStatus.PENDING, 503, 1), (DeliveryStatus.DELIVERED, 200, 1),
                   (DeliveryStatus.DELIVERED, 202, 1)]
    assert all(by_event[i].leased_until is None for i in ids)


def test_deliveries_answered_before_a_crash_stay_delivered(
        receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    from service_crm.services import webhooks

    _endpoint(receiver.url)
    _emit(3)
    real_post, calls = webhooks._post, []

    def post_then_crash(d: m.WebhookDelivery, *, now: dt.datetime) -> tuple[int | None, str]:
        calls.append(d.pk)
        if len(calls) == 3:
            raise RuntimeError("worker bug")
        return real_post(d, now=now)

    monkeypatch.setattr(webhooks, "_post", post_then_crash)
    with pytest.raises(RuntimeError):
        webhook_deliver_due(now=NOW)
    assert m.WebhookDelivery.objects.filter(status=DeliveryStatus.DELIVERED).count() == 2
    assert len(receiver.calls) == 2


@pytest.mark.parametrize("command", ["crm_webhooks", "crm_mail"])
@pytest.mark.parametrize("every", ["-1", "nan"])
def test_the_outbox_workers_refuse_a_bad_interval(command: str, every: str) -> None:
    # One loop for both workers: `crm_webhooks --every-s nan` used to deliver a pass and then
    # crash in time.sleep.
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match="--every-s must be a number >= 0"):
        call_command(command, "--every-s", every)
