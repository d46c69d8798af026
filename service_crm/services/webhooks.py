"""Business events out: a transactional outbox, delivered as signed webhooks with retries.

``outbox_emit`` runs inside the transaction of the change it reports (offer accepted, work
order completed, ...): the event row and one delivery row per subscribed endpoint commit or
roll back with the change, so no event is sent for a change that did not happen and none is
lost for one that did. ``webhook_deliver_due`` (housekeeping, or ``crm_webhooks``) then POSTs
each due delivery outside any transaction:

* body: the event as canonical JSON (same bytes on every attempt);
* ``Aftercare-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>." + body)>`` with
  ``Aftercare-Timestamp`` (Unix seconds), so a receiver can reject forged and replayed calls;
* ``Idempotency-Key``: the event id, the same on every retry and replay, so a receiver that
  saw it before can answer 2xx and do nothing.

A 2xx answer delivers; anything else (or no answer) is retried with exponential backoff up to
``conf.webhook_max_attempts()``, then given up ("dead"), where the desk or an admin can replay
it. Deliveries are claimed with a lease under ``SKIP LOCKED``: concurrent workers never send
the same delivery at the same time, and a worker that dies mid-call only delays it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from service_crm import conf
from service_crm.models import OutboxEvent, WebhookDelivery, WebhookEndpoint
from service_crm.models.choices import DeliveryStatus
from service_crm.selectors.access import Role, has_role
from service_crm.services.audit import audit_record, snapshot
from service_crm.services.outbox import claim_due, retry_or_give_up

D = DeliveryStatus
TOPICS = frozenset({"offer.accepted", "work_order.completed", "ticket.sla_breached",
                    "contract.renewed", "contract.lapsed", "invoice.approved",
                    "order.created", "opportunity.won", "opportunity.lost"})
# Who may replay a delivery: the people who run the integration.
REPLAY_ROLES = frozenset({Role.ADMIN, Role.SERVICE_MANAGER})


def outbox_emit(*, topic: str, data: dict[str, Any], now: dt.datetime) -> OutboxEvent:
    """Record a business event in the caller's transaction (see the module doc)."""
    if not connection.in_atomic_block:
        raise RuntimeError("outbox_emit must run inside the transaction of the change")
    if topic not in TOPICS:
        raise ValueError(f"unknown event topic {topic!r}")
    payload = json.loads(json.dumps(data, cls=DjangoJSONEncoder))
    event = OutboxEvent.objects.create(topic=topic, payload=payload, created_at=now)
    WebhookDelivery.objects.bulk_create([
        WebhookDelivery(event=event, endpoint=ep, next_attempt_at=now)
        for ep in WebhookEndpoint.objects.filter(active=True) if ep.wants(topic)
    ])
    return event


def webhook_body(event: OutboxEvent) -> bytes:
    """The bytes POSTed for an event: identical on every attempt."""
    doc = {"id": str(event.id), "topic": event.topic,
           "occurred_at": event.created_at.astimezone(dt.UTC).isoformat(),
           "data": event.payload}
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def webhook_sign(*, secret: str, timestamp: int, body: bytes) -> str:
    """``v1=`` + hex HMAC-SHA256 of ``"<timestamp>." + body`` under the endpoint's secret."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"v1={mac.hexdigest()}"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # A receiver that redirects gets a failed attempt, not our payload sent somewhere else.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirect)


@dataclass(frozen=True)
class DeliveryReport:
    delivered: int = 0
    failed: int = 0
    dead: int = 0


@transaction.atomic(durable=True)
def _claim(*, now: dt.datetime, limit: int, lease: dt.timedelta) -> list[int]:
    return claim_due(WebhookDelivery, now=now, limit=limit, lease=now + lease)


def _post(delivery: WebhookDelivery, *, now: dt.datetime) -> tuple[int | None, str]:
    body = webhook_body(delivery.event)
    ts = int(now.timestamp())
    url = delivery.endpoint.url
    if not url.startswith(("https://", "http://")):  # never file: or other schemes
        return None, "not an http(s) URL"
    req = urllib.request.Request(url, data=body, method="POST", headers={  # noqa: S310
        "Content-Type": "application/json",
        "User-Agent": "Aftercare-Webhooks/1",
        "Aftercare-Event": delivery.event.topic,
        "Aftercare-Delivery": str(delivery.pk),
        "Aftercare-Timestamp": str(ts),
        "Aftercare-Signature": webhook_sign(secret=delivery.endpoint.secret, timestamp=ts,
                                            body=body),
        "Idempotency-Key": str(delivery.event.id),
    })
    try:
        with _opener.open(req, timeout=conf.webhook_timeout_s()) as resp:  # noqa: S310
            return int(resp.status), ""
    except urllib.error.HTTPError as exc:
        return int(exc.code), f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError) as exc:  # refused, DNS, timeout, reset
        return None, f"{type(exc).__name__}: {exc}"[:300]


class _Delivered:
    """Deliveries answered 2xx, marked in one UPDATE per status code every ``every_s`` (or
    ``size`` deliveries, or at the end of the pass) instead of one commit each: a commit is a
    WAL flush, as long as the POST itself. A worker that dies before marking only re-sends
    those few, with the same ``Idempotency-Key``."""

    def __init__(self, *, now: dt.datetime, size: int = 50, every_s: float = 0.25) -> None:
        self.now, self.size, self.every_s = now, size, every_s
        self.pending: dict[int, list[int]] = {}
        self.count = 0
        self.flushed_at = time.monotonic()

    def add(self, pk: int, code: int) -> None:
        self.pending.setdefault(code, []).append(pk)
        self.count += 1
        if (sum(map(len, self.pending.values())) >= self.size
                or time.monotonic() - self.flushed_at >= self.every_s):
            self.flush()

    def flush(self) -> None:
        for code, pks in self.pending.items():
            WebhookDelivery.objects.filter(pk__in=pks).update(
                attempts=F("attempts") + 1, leased_until=None, last_status_code=code,
                status=D.DELIVERED, delivered_at=self.now, last_error="")
        self.pending.clear()
        self.flushed_at = time.monotonic()


@transaction.atomic(durable=True)
def _record_failure(*, delivery_id: int, code: int | None, error: str,
                    now: dt.datetime) -> str:
    d = WebhookDelivery.objects.select_for_update().get(pk=delivery_id)
    d.last_status_code = code
    return retry_or_give_up(d, error=error or f"HTTP {code}", now=now,
                            dead_action="webhook.dead")


def webhook_deliver_due(*, now: dt.datetime | None = None, limit: int = 100,
                        budget_s: float | None = None) -> DeliveryReport:
    """Send every delivery that is due (up to ``limit``); returns what happened.

    ``budget_s`` bounds the pass's wall time (the housekeeping shares its thread with alert
    ingestion): once spent, the deliveries claimed but not sent are released for the next pass.
    """
    now = now or timezone.now()
    lease = dt.timedelta(seconds=conf.webhook_timeout_s() * 2 + 30)
    failed = dead = 0
    started = time.monotonic()
    claimed = _claim(now=now, limit=limit, lease=lease)
    rows = WebhookDelivery.objects.select_related("event", "endpoint").in_bulk(claimed)
    delivered = _Delivered(now=now)
    try:
        for i, pk in enumerate(claimed):
            if budget_s is not None and i > 0 and time.monotonic() - started >= budget_s:
                WebhookDelivery.objects.filter(pk__in=claimed[i:]).update(leased_until=None)
                break
            code, error = _post(rows[pk], now=now)
            if code is not None and 200 <= code < 300:
                delivered.add(pk, code)
            elif _record_failure(delivery_id=pk, code=code, error=error, now=now) == D.DEAD:
                dead += 1
            else:
                failed += 1
    finally:
        delivered.flush()
    return DeliveryReport(delivered=delivered.count, failed=failed, dead=dead)


@transaction.atomic(durable=True)
def webhook_replay(*, delivery: WebhookDelivery, actor: Any,
                   now: dt.datetime | None = None) -> WebhookDelivery:
    """Send a delivery again (given up, or delivered and lost by the receiver): same event id,
    so an idempotent receiver applies it at most once. Audited."""
    now = now or timezone.now()
    if not has_role(user=actor, roles=REPLAY_ROLES):
        raise ValidationError({"actor": "Only an administrator or service manager replays "
                                        "webhooks."})
    d = WebhookDelivery.objects.select_for_update().get(pk=delivery.pk)
    before = snapshot(d)
    d.status, d.attempts, d.next_attempt_at = D.PENDING, 0, now
    d.leased_until, d.delivered_at = None, None
    d.save()
    audit_record(actor=actor, action="webhook.replay", obj=d, before=before, at=now)
    return d
